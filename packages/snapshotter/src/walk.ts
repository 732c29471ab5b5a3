import { lstatSync, promises as fsp, readdirSync, type BigIntStats } from 'node:fs';
import * as path from 'node:path';
import { throwIfAborted } from './errors.js';
import { isOverlayXattr, type XattrMap } from './sys.js';
import { joinName, type LayerEntry } from './tar/writer.js';

/** Content xattrs of a path (overlay bookkeeping removed), or undefined when there are none. */
export function contentXattrs(map: XattrMap, abs: string): Map<string, Buffer> | undefined {
  const x = map.get(abs);
  if (!x) return undefined;
  let out: Map<string, Buffer> | undefined;
  for (const [k, v] of x) {
    if (isOverlayXattr(k)) continue;
    (out ??= new Map()).set(k, v);
  }
  return out;
}

export function byKey(a: { key: Buffer }, b: { key: Buffer }): number {
  return Buffer.compare(a.key, b.key);
}

export async function lstatAll(dir: string, names: string[]): Promise<BigIntStats[]> {
  return Promise.all(names.map((n) => fsp.lstat(path.join(dir, n), { bigint: true })));
}

/**
 * How many entries a walk lists with synchronous calls before it goes to the thread pool. The
 * change of a rebuilt step is mostly a handful of files: there each awaited readdir or lstat was
 * a thread-pool round trip on the step's path, where the calls take microseconds (issue 16);
 * a big tree is listed as before, its lstats side by side on the pool.
 */
const SYNC_BUDGET = 256;

async function listDir(abs: string, budget: { left: number }): Promise<{ names: string[]; stats: BigIntStats[] }> {
  if (budget.left <= 0) {
    const names = await fsp.readdir(abs);
    return { names, stats: await lstatAll(abs, names) };
  }
  const names = readdirSync(abs);
  budget.left -= names.length + 1;
  if (budget.left < 0) return { names, stats: await lstatAll(abs, names) };
  return { names, stats: names.map((n) => lstatSync(path.join(abs, n), { bigint: true })) };
}

export interface WalkOptions {
  /**
   * The directory is an overlayfs upper (or snapshot) dir: char devices 0/0 are whiteouts and
   * `trusted.overlay.opaque=y` marks opaque directories. Otherwise everything is plain content.
   */
  overlay: boolean;
  /** The opaque marker's name (default `trusted.overlay.opaque`; `user.overlay.opaque` in a user namespace). */
  opaqueXattr?: string;
  signal?: AbortSignal;
  /** Counts the objects listed (whiteouts included), for a caller that wants to know. */
  counted?: { entries: number };
}

/**
 * Every object under `root` (not `root` itself), depth first, parents before children, siblings
 * sorted by their member name's bytes. Costs O(entries under root): for an overlay upper dir,
 * that is the size of the change, not of the root filesystem.
 */
export async function* walkTree(root: string, xattrs: XattrMap, opts: WalkOptions): AsyncGenerator<LayerEntry> {
  const opaque = opts.opaqueXattr ?? 'trusted.overlay.opaque';
  const budget = { left: SYNC_BUDGET };
  async function* dir(rel: string): AsyncGenerator<LayerEntry> {
    throwIfAborted(opts.signal);
    const abs = rel === '' ? root : path.join(root, rel);
    const { names, stats } = await listDir(abs, budget);
    if (opts.counted) opts.counted.entries += names.length;
    const items = names.map((name, i) => {
      const st = stats[i]!;
      const whiteout = opts.overlay && st.isCharacterDevice() && st.rdev === 0n;
      return { name, st, whiteout, key: Buffer.from(whiteout ? `.wh.${name}` : name) };
    });
    items.sort(byKey);
    for (const it of items) {
      const childRel = joinName(rel, it.name);
      if (it.whiteout) {
        yield { kind: 'whiteout', name: childRel };
        continue;
      }
      const childAbs = path.join(abs, it.name);
      const x = contentXattrs(xattrs, childAbs);
      yield x ? { kind: 'node', name: childRel, abs: childAbs, st: it.st, xattrs: x } : { kind: 'node', name: childRel, abs: childAbs, st: it.st };
      if (it.st.isDirectory()) {
        if (opts.overlay && xattrs.get(childAbs)?.get(opaque)?.toString() === 'y') yield { kind: 'opaque', dir: childRel };
        yield* dir(childRel);
      }
    }
  }
  yield* dir('');
}
