import { createHash } from 'node:crypto';

/**
 * What a cache record keeps of a step's inputs: one digest per input, never a value (a build
 * arg such as NPM_TOKEN must not reach a cache record or an exported cache). `op` stays in
 * clear (a fixed word: run, copy, add, workdir, link), and so does the kind of a COPY's source
 * (`stage:`, `image:`, `context:`). Variables get one entry each (`env:NAME`, `arg:NAME`), so
 * `--explain-cache` can name the one that changed.
 *
 * Each digest is salted with the parent key: records are only ever compared with others on
 * the same parent, and equal values on different parents do not show as equal digests.
 */
export type InputDigests = Record<string, string>;

function digest(parent: string, name: string, value: unknown): string {
  return `sha256:${createHash('sha256').update(JSON.stringify([parent, name, value ?? null])).digest('hex')}`;
}

/** `NAME=value` entries, one digest per name (the last one wins, as in an environment). */
function variables(out: InputDigests, parent: string, prefix: string, list: unknown): void {
  if (!Array.isArray(list)) return;
  for (const e of list as string[]) {
    const i = e.indexOf('=');
    const name = i < 0 ? e : e.slice(0, i);
    out[`${prefix}:${name}`] = digest(parent, `${prefix}:${name}`, i < 0 ? null : e.slice(i + 1));
  }
}

/** The digests of a step's cache inputs (see InputDigests). */
export function inputDigests(parent: string, inputs: Record<string, unknown>): InputDigests {
  const out: InputDigests = {};
  for (const [k, v] of Object.entries(inputs)) {
    if (v === undefined) continue;
    if (k === 'op') out.op = String(v);
    else if (k === 'env') variables(out, parent, 'env', v);
    else if (k === 'buildArgs') variables(out, parent, 'arg', v);
    else if (k === 'from' && typeof v === 'string') out.from = `${v.includes(':') ? v.slice(0, v.indexOf(':')) : v}:${digest(parent, k, v)}`;
    else out[k] = digest(parent, k, v);
  }
  return out;
}
