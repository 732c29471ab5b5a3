import { promises as fsp, type BigIntStats } from 'node:fs';
import * as path from 'node:path';
import { parseGetfattr, run } from './sys.js';
import type { LayerEntry } from './tar/writer.js';

/**
 * overlayfs marks a directory opaque when it is made over a whiteout, but also when a directory
 * made in this step is renamed into a merged one (`mkdir t && mv t /opt/x`), whether or not a
 * lower layer has anything at its new path. Where nothing lower shows, the marker hides nothing
 * and `mkdir /opt/x` would not have made it (nor can the copy driver tell the two apart): drop
 * it from the layer, and from the upper dir, which becomes the snapshot of this layer's diff_id
 * and may later sit on other lowers.
 */
export interface BlindOpaqueOptions {
  upper: string;
  /** The overlay lower dirs, top first. */
  lowers: string[];
  /** The opaque xattr's name. */
  opaque: string;
  /** Awaited before the upper dir is changed (the commit's unmount, which may still be running). */
  beforeChange?: () => Promise<void>;
}

export async function* withoutBlindOpaques(entries: AsyncIterable<LayerEntry>, o: BlindOpaqueOptions): AsyncGenerator<LayerEntry> {
  for await (const e of entries) {
    if (e.kind === 'opaque' && !(await lowersShow(o.lowers, e.dir, o.opaque))) {
      // the upper dir is changed only once no overlay mount uses it any more
      await o.beforeChange?.();
      await run('setfattr', ['-x', o.opaque, '--', path.join(o.upper, e.dir)]);
      continue;
    }
    yield e;
  }
}

function isWhiteout(st: BigIntStats): boolean {
  return st.isCharacterDevice() && st.rdev === 0n;
}

/**
 * Does the union of the overlay lower dirs `lowers` (top first) show anything at `rel`? As in an
 * overlay lookup, a whiteout, a non-directory or an opaque directory hides the layers below it.
 */
export async function lowersShow(lowers: string[], rel: string, opaque = 'trusted.overlay.opaque'): Promise<boolean> {
  const parts = rel.split('/');
  const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  const stats = await Promise.all(lowers.map((l) => Promise.all(prefixes.map((p) => fsp.lstat(path.join(l, p), { bigint: true }).catch(() => undefined)))));
  const dirs = lowers.flatMap((l, li) => prefixes.slice(0, -1).filter((_, i) => stats[li]![i]?.isDirectory()).map((p) => path.join(l, p)));
  const marks = dirs.length === 0 ? new Map() : parseGetfattr((await run('getfattr', ['-n', opaque, '-e', 'text', '--absolute-names', '--', ...dirs], { allowFail: true })).stdout.toString('utf8'));
  let live = lowers.map((_, i) => i);
  for (let d = 0; d < parts.length; d++) {
    const next: number[] = [];
    for (const li of live) {
      const st = stats[li]![d];
      if (!st) continue;
      if (d === parts.length - 1) return !isWhiteout(st);
      if (!st.isDirectory()) break;
      next.push(li);
      if (marks.get(path.join(lowers[li]!, prefixes[d]!))?.get(opaque)?.toString() === 'y') break;
    }
    if (next.length === 0) return false;
    live = next;
  }
  return false;
}
