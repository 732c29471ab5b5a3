import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { isDigest, readdirOrEmpty, treeSize, type Digest } from '@hoist/oci';
import { mountsUnder } from './overlay.js';
import { Layout } from './store.js';

/** One layer directory of the snapshot root, complete or not. */
export interface SnapshotEntry {
  diffId: Digest;
  dir: string;
  /** layer.json is there (the snapshotter renames complete snapshots into place). */
  complete: boolean;
  link?: string;
}

/** A flattened tree of the copy driver (a pure cache). */
export interface ChainEntry {
  chainId: Digest;
  dir: string;
}

/**
 * Store maintenance over the snapshotter's on-disk layout (for prune, fsck, du), without
 * opening a Snapshotter (no driver probe): the layout is read and changed only here and in the
 * Snapshotter itself.
 *   snapshots/<hex>/{diff/, layer.json}   one unpacked layer per diff_id (layer.json = complete)
 *   l/<id> -> ../snapshots/<hex>/diff     short names for overlay mount options
 *   chains/<chain hex>/                   copy driver: flattened trees (pure caches)
 *   owners/<chain hex>                    their ownership records (no-privilege mode)
 *   mounts/<pid>-<rand>/, tmp/<what>-<pid>-<rand>   work of running (or crashed) processes
 */
export class SnapshotMaintenance {
  private readonly layout: Layout;

  constructor(readonly root: string) {
    this.layout = new Layout(root);
  }

  /** Every snapshot dir, complete or not (a torn unpack has no layer.json). */
  async list(): Promise<SnapshotEntry[]> {
    const out: SnapshotEntry[] = [];
    for (const hex of await readdirOrEmpty(path.join(this.root, 'snapshots'))) {
      const diffId = `sha256:${hex}`;
      if (!isDigest(diffId)) continue;
      const rec = await this.layout.record(diffId).catch(() => undefined);
      const e: SnapshotEntry = { diffId, dir: this.layout.snapshot(diffId), complete: rec !== undefined };
      if (typeof rec?.link === 'string' && /^[a-z2-7]{8}$/.test(rec.link)) e.link = rec.link;
      out.push(e);
    }
    return out;
  }

  async chains(): Promise<ChainEntry[]> {
    const out: ChainEntry[] = [];
    for (const hex of await readdirOrEmpty(path.join(this.root, 'chains'))) {
      const id = `sha256:${hex}`;
      if (isDigest(id)) out.push({ chainId: id, dir: this.layout.chain(id) });
    }
    return out;
  }

  /**
   * Remove a snapshot or chain dir: first renamed into `tmp/prune-<pid>-<rand>` (one atomic
   * step: a reader sees the snapshot or nothing; a crash leaves a temp dir that the stale
   * cleanup removes), then deleted. Returns its size.
   */
  async remove(entry: SnapshotEntry | ChainEntry): Promise<number> {
    const size = await treeSize(entry.dir);
    await fsp.mkdir(this.layout.tmp, { recursive: true });
    const grave = path.join(this.layout.tmp, `prune-${process.pid}-${randomBytes(6).toString('hex')}`);
    try {
      await fsp.rename(entry.dir, grave);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw e;
    }
    await fsp.rm(grave, { recursive: true, force: true });
    // a chain's ownership record (no-privilege mode) goes with its tree
    if ('chainId' in entry) await fsp.rm(this.layout.owners(entry.chainId), { force: true });
    return size;
  }

  /** Links in `l/` whose snapshot is gone. */
  async danglingLinks(): Promise<string[]> {
    const out: string[] = [];
    for (const name of await readdirOrEmpty(this.layout.links)) {
      const p = path.join(this.layout.links, name);
      if (!(await fsp.stat(p).then(() => true, () => false))) out.push(p);
    }
    return out;
  }

  async removeDanglingLinks(): Promise<number> {
    const dangling = await this.danglingLinks();
    for (const p of dangling) await fsp.rm(p, { force: true });
    return dangling.length;
  }

  /** Snapshot dirs and their bytes (snapshots and the copy driver's chains). */
  async usage(): Promise<{ count: number; bytes: number }> {
    const count = (await readdirOrEmpty(path.join(this.root, 'snapshots'))).length;
    return { count, bytes: (await treeSize(path.join(this.root, 'snapshots'))) + (await treeSize(path.join(this.root, 'chains'))) };
  }

  /** Bytes of work dirs under `tmp/`. */
  async tempBytes(): Promise<number> {
    return treeSize(this.layout.tmp);
  }

  /** Mount dirs (`mounts/`) and work dirs (`tmp/`) of running or crashed processes, by name (`<pid>-<rand>`, `<what>-<pid>-<rand>`). */
  async work(): Promise<Array<{ kind: 'mount' | 'tmp'; dir: string; name: string }>> {
    const out: Array<{ kind: 'mount' | 'tmp'; dir: string; name: string }> = [];
    for (const [kind, dir] of [['mount', this.layout.mounts], ['tmp', this.layout.tmp]] as const) {
      for (const name of await readdirOrEmpty(dir)) out.push({ kind, dir: path.join(dir, name), name });
    }
    return out;
  }

  /** Mount points below `mounts/`, each with the name of the mount dir it is in. */
  async mountPoints(): Promise<Array<{ path: string; name: string }>> {
    const mounts = this.layout.mounts;
    const points = await mountsUnder(mounts).catch(() => [] as string[]);
    return points.map((m) => ({ path: m, name: path.relative(mounts, m).split(path.sep)[0] ?? '' }));
  }
}
