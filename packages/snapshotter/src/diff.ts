import { promises as fsp, type BigIntStats } from 'node:fs';
import * as path from 'node:path';
import { throwIfAborted } from './errors.js';
import type { Ownership } from './owners.js';
import type { TreeStamps } from './stamps.js';
import type { XattrMap } from './sys.js';
import { joinName, type LayerEntry } from './tar/writer.js';
import { byKey, contentXattrs, lstatAll } from './walk.js';

const S_IFMT = 0o170000n;
const CHUNK = 256 * 1024;

export interface DiffOptions {
  /**
   * Stamps of `next` taken right after it was copied from `base`: changes are then found by
   * inode and ctime, and directories deleted and made again are told apart. Without them,
   * every file's content is compared.
   */
  stamps?: TreeStamps;
  /**
   * No-privilege mode: who owns what in `base` and `next` (on disk everything is the builder's):
   * an object whose recorded owner changed is changed.
   */
  owners?: { base: Ownership; next: Ownership };
  signal?: AbortSignal;
}

/**
 * The copy driver's diff: compare `next` with `base` (the tree it was copied from with `cp -a`)
 * and produce the entries an overlay upper dir would give for the same change: changed and new
 * objects with their parents, whiteouts for deletions, and for a directory that replaced a
 * non-directory or was deleted and made again, an opaque marker and everything in it now.
 * Costs O(root filesystem).
 */
export async function* diffTrees(base: string, next: string, baseX: XattrMap, nextX: XattrMap, opts: DiffOptions = {}): AsyncGenerator<LayerEntry> {
  const cmp = new Compare(base, next, baseX, nextX, opts.stamps, opts.owners);

  async function dir(rel: string, baseIsDir: boolean): Promise<LayerEntry[]> {
    throwIfAborted(opts.signal);
    const nAbs = rel === '' ? next : path.join(next, rel);
    const bAbs = rel === '' ? base : path.join(base, rel);
    const nNames = await fsp.readdir(nAbs);
    const bNames = baseIsDir ? await fsp.readdir(bAbs) : [];
    const nStats = await lstatAll(nAbs, nNames);
    const nSet = new Set(nNames);
    const bSet = new Set(bNames);
    const bStats = new Map<string, BigIntStats>();
    const common = nNames.filter((n) => bSet.has(n));
    (await lstatAll(bAbs, common)).forEach((st, i) => bStats.set(common[i]!, st));
    const items: Array<{ key: Buffer; name: string; st?: BigIntStats }> = nNames.map((name, i) => ({ key: Buffer.from(name), name, st: nStats[i]! }));
    for (const name of bNames) if (!nSet.has(name)) items.push({ key: Buffer.from(`.wh.${name}`), name });
    items.sort(byKey);
    const out: LayerEntry[] = [];
    for (const it of items) {
      const childRel = joinName(rel, it.name);
      if (!it.st) {
        out.push({ kind: 'whiteout', name: childRel });
        continue;
      }
      const childAbs = path.join(nAbs, it.name);
      const x = contentXattrs(nextX, childAbs);
      const node: LayerEntry = x ? { kind: 'node', name: childRel, abs: childAbs, st: it.st, xattrs: x } : { kind: 'node', name: childRel, abs: childAbs, st: it.st };
      const bst = bStats.get(it.name);
      if (it.st.isDirectory() && bst?.isDirectory() && !cmp.recreated(childRel, it.st)) {
        const children = await dir(childRel, true);
        if (children.length > 0 || (await cmp.changed(childRel, bst, it.st))) {
          out.push(node);
          for (const c of children) out.push(c);
        }
      } else if (it.st.isDirectory()) {
        // new, or it replaced something: overlayfs gives an opaque upper dir holding all of it
        out.push(node);
        if (bst) out.push({ kind: 'opaque', dir: childRel });
        for (const c of await dir(childRel, false)) out.push(c);
      } else if (!bst || (await cmp.changed(childRel, bst, it.st))) {
        out.push(node);
      }
    }
    return out;
  }
  for (const e of await dir('', true)) yield e;
}

/** Did an object that is at the same path in both trees change? */
class Compare {
  constructor(
    private readonly base: string,
    private readonly next: string,
    private readonly baseX: XattrMap,
    private readonly nextX: XattrMap,
    private readonly stamps: TreeStamps | undefined,
    private readonly owners: { base: Ownership; next: Ownership } | undefined,
  ) {}

  /** A directory deleted (or renamed away) and made again at its path: not the one that was copied. */
  recreated(rel: string, n: BigIntStats): boolean {
    const s = this.stamps?.entries.get(rel);
    if (!s) return false;
    return s.ino !== n.ino || (this.stamps!.btime && s.birthtimeNs !== n.birthtimeNs);
  }

  async changed(rel: string, b: BigIntStats, n: BigIntStats): Promise<boolean> {
    if ((b.mode & S_IFMT) !== (n.mode & S_IFMT)) return true;
    if (this.owners) {
      // a recorded chown leaves nothing on disk (not even the ctime): compare the records first
      const bo = this.owners.base.get(rel);
      const no = this.owners.next.get(rel);
      if (bo.uid !== no.uid || bo.gid !== no.gid) return true;
    }
    const s = this.stamps?.entries.get(rel);
    if (s && s.ctimeNs < this.stamps!.racyFrom) {
      if (s.ino !== n.ino) return true;
      if (s.ctimeNs === n.ctimeNs) return false;
      // ctime moves on every change of content or metadata, but also when another hard link to
      // the file is removed, which overlayfs does not count as a change of this one
      if (n.nlink >= s.nlink) return true;
    }
    return this.differs(rel, b, n);
  }

  private async differs(rel: string, b: BigIntStats, n: BigIntStats): Promise<boolean> {
    if (b.mode !== n.mode || b.uid !== n.uid || b.gid !== n.gid || b.mtimeNs !== n.mtimeNs) return true;
    if (!n.isDirectory() && b.size !== n.size) return true;
    if ((n.isCharacterDevice() || n.isBlockDevice()) && b.rdev !== n.rdev) return true;
    const bp = path.join(this.base, rel);
    const np = path.join(this.next, rel);
    if (n.isSymbolicLink() && (await fsp.readlink(bp)) !== (await fsp.readlink(np))) return true;
    if (!sameXattrs(contentXattrs(this.baseX, bp), contentXattrs(this.nextX, np))) return true;
    return n.isFile() && !(await sameContent(bp, np));
  }
}

function sameXattrs(a: Map<string, Buffer> | undefined, b: Map<string, Buffer> | undefined): boolean {
  if ((a?.size ?? 0) !== (b?.size ?? 0)) return false;
  if (!a || !b) return true;
  for (const [k, v] of a) {
    const w = b.get(k);
    if (!w || !w.equals(v)) return false;
  }
  return true;
}

/** Byte comparison of two regular files of the same size. */
async function sameContent(a: string, b: string): Promise<boolean> {
  const [fa, fb] = await Promise.all([fsp.open(a, 'r'), fsp.open(b, 'r')]);
  try {
    const ba = Buffer.allocUnsafe(CHUNK);
    const bb = Buffer.allocUnsafe(CHUNK);
    for (let pos = 0; ; pos += CHUNK) {
      const [ra, rb] = await Promise.all([fa.read(ba, 0, CHUNK, pos), fb.read(bb, 0, CHUNK, pos)]);
      if (ra.bytesRead !== rb.bytesRead || !ba.subarray(0, ra.bytesRead).equals(bb.subarray(0, rb.bytesRead))) return false;
      if (ra.bytesRead < CHUNK) return true;
    }
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
}
