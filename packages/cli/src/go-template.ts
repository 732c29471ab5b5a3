import { UsageError } from './errors.js';

/**
 * The subset of Go's text/template that `docker inspect --format` users write: text with
 * `{{.A.B}}`, `{{json .A}}`, `{{index .A "key"}}` and `{{join .A ","}}`; values print as Go prints
 * them (slices `[a b]`, maps `map[k:v]`, a missing key `<no value>`). Anything else is a usage
 * error naming what is supported.
 */
export function renderTemplate(template: string, data: unknown): string {
  let out = '';
  let rest = template;
  for (;;) {
    const open = rest.indexOf('{{');
    if (open < 0) return out + rest;
    const close = rest.indexOf('}}', open);
    if (close < 0) throw new UsageError(`--format "${template}": unclosed {{`);
    out += rest.slice(0, open) + evaluate(rest.slice(open + 2, close).trim(), data, template);
    rest = rest.slice(close + 2);
  }
}

function evaluate(action: string, data: unknown, template: string): string {
  const words = tokens(action);
  const [fn, ...args] = words;
  if (fn === undefined) return '';
  if (fn.startsWith('.')) {
    if (args.length > 0) unsupported(action, template);
    return goString(lookup(data, fn));
  }
  if (fn === 'json' && args.length === 1) return JSON.stringify(sortedKeys(lookup(data, args[0]!) ?? null));
  if (fn === 'index' && args.length === 2) {
    const m = lookup(data, args[0]!);
    const key = unquote(args[1]!, template);
    return goString(m !== null && typeof m === 'object' ? (m as Record<string, unknown>)[key] : undefined);
  }
  if (fn === 'join' && args.length === 2) {
    const v = lookup(data, args[0]!);
    return Array.isArray(v) ? v.map(goString).join(unquote(args[1]!, template)) : goString(v);
  }
  return unsupported(action, template);
}

function unsupported(action: string, template: string): never {
  throw new UsageError(`--format "${template}": {{${action}}} is not supported; use {{.Field.Sub}}, {{json .Field}}, {{index .Map "key"}} or {{join .List ","}}`);
}

function tokens(action: string): string[] {
  return action.match(/"(?:[^"\\]|\\.)*"|\S+/g) ?? [];
}

function unquote(s: string, template: string): string {
  if (!/^".*"$/.test(s)) throw new UsageError(`--format "${template}": expected a quoted string, not ${s}`);
  return JSON.parse(s) as string;
}

/** `.A.B` in `data` (`.` is the data itself); a missing key is undefined. */
function lookup(data: unknown, path: string): unknown {
  if (path === '.') return data;
  let v: unknown = data;
  for (const key of path.split('.').slice(1)) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

/** How Go's fmt prints a decoded JSON value in a template. */
function goString(v: unknown): string {
  if (v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (Array.isArray(v)) return `[${v.map(goString).join(' ')}]`;
  if (typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `map[${entries.map(([k, x]) => `${k}:${goString(x)}`).join(' ')}]`;
  }
  return String(v);
}

/** Go's encoding/json writes map keys sorted. */
function sortedKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortedKeys);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortedKeys((v as Record<string, unknown>)[k])]));
}
