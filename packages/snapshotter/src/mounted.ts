import { mkdirSync, promises as fsp, readdirSync, renameSync } from 'node:fs';
import * as path from 'node:path';
import { chainIds, type BlobStore, type Descriptor, type Digest } from '@hoist/oci';
import { SnapshotError, throwIfAborted } from './errors.js';
import { diffTrees } from './diff.js';
import { writeLayer, writeLayerThenStore, type WriteLayerOptions, type WrittenLayer } from './layer.js';
import { withoutBlindOpaques } from './opaque.js';
import { opaqueXattr, unmount, type OverlayXattrs } from './overlay.js';
import type { Ownership } from './owners.js';
import type { TreeStamps } from './stamps.js';
import type { Layout } from './store.js';
import { readXattrsTree } from './sys.js';
import type { LayerEntry } from './tar/writer.js';
import { walkTree } from './walk.js';

export type Driver = 'overlay' | 'copy';

export interface CommitOptions extends Omit<WriteLayerOptions, 'signal'> {
  signal?: AbortSignal;
  /**
   * Overlay driver: answer once the layer is written and hashed; its blob's fsync and rename
   * into place go on meanwhile (issue 16: off the step's path). The caller then awaits
   * Snapshotter.blobStored(descriptor.digest) before it reads the blob or refers to it durably.
   */
  blobLater?: boolean;
}

export interface CommitResult {
  /** Nothing changed. `diffId`/`descriptor` are then the empty layer's (stored, tiny); a builder may skip it. */
  empty: boolean;
  diffId: Digest;
  descriptor: Descriptor;
  /** Size of the uncompressed layer tar. */
  size: number;
}

/** What a Mounted needs from its Snapshotter. */
export interface MountHost {
  readonly driver: Driver;
  /** Which xattrs the overlay mounts keep their bookkeeping in. */
  readonly overlayXattrs: OverlayXattrs;
  readonly layout: Layout;
  readonly blobs: BlobStore;
  /** Forget a finished mount (for cleanup bookkeeping). */
  forget(m: Mounted): void;
  /** Remove a finished mount's directory in the background (awaited by the host's settle()). */
  removeLater(dir: string): void;
  /** Remove a directory that holds next to nothing, now (in the background should that fail). */
  removeSmall(dir: string): void;
  /** A committed layer's blob that is still being stored (see Snapshotter.blobStored). */
  storing(digest: Digest, stored: Promise<void>): void;
  /** No-privilege mode: the ownership record of a chain's tree. */
  chainOwners(lowers: readonly Digest[]): Promise<Ownership>;
}

async function* fromArray(a: LayerEntry[]): AsyncGenerator<LayerEntry> {
  yield* a;
}

/** An upper dir captured as a layer: `entries`, how many objects it held. */
interface Captured {
  empty: boolean;
  w: WrittenLayer;
  stored: Promise<void>;
  entries: number;
}

/** Up to this many objects, a committed mount's directory is removed at once (see cleanupLater). */
const SMALL_CHANGE = 64;

/**
 * A writable root over a chain of layers. `commit` captures what changed as a layer (and keeps
 * it as the snapshot for its diff_id); `release` undoes the mount. Both are safe on error paths;
 * `release` is idempotent.
 */
export class Mounted {
  private state: 'mounted' | 'committing' | 'done' = 'mounted';
  /** @internal */
  constructor(
    private readonly host: MountHost,
    /** The mount's private directory (mounts/<pid>-<rand>). */
    readonly dir: string,
    /** The writable root: an overlay mount (overlay driver) or a private copy (copy driver). */
    readonly root: string,
    readonly lowers: readonly Digest[],
    private mountedNow: boolean,
    /** Copy driver: the writable copy as it was made. */
    private readonly stamps?: TreeStamps,
    /**
     * No-privilege mode (copy driver, files cannot be given away): who owns what in `root`, by
     * path. Steps change it instead of chowning (COPY --chown, RUN through fakeroot); the
     * commit writes the layer's tar headers from it. Undefined where ownership is on disk.
     */
    readonly owners?: Ownership,
  ) {}

  get driver(): Driver {
    return this.host.driver;
  }

  private get upper(): string {
    return path.join(this.dir, 'upper');
  }

  /**
   * Capture the change as a layer in ONE pass (diff -> tar -> diff_id hash -> compression ->
   * blob store) and keep it as the snapshot of its diff_id. The root is unmounted first (the
   * mount is consumed: call `release` afterwards, as always).
   */
  async commit(opts: CommitOptions = {}): Promise<CommitResult> {
    if (this.state !== 'mounted') throw new SnapshotError('RELEASED', 'this mount was already committed or released');
    throwIfAborted(opts.signal);
    this.state = 'committing';
    try {
      const r = this.host.driver === 'overlay' ? await this.commitOverlay(opts) : await this.commitCopy(opts);
      this.state = 'done';
      return r;
    } catch (e) {
      this.state = 'mounted';
      throw e;
    }
  }

  private async commitOverlay(opts: CommitOptions): Promise<CommitResult> {
    const { layout } = this.host;
    // the upper dir is read while the overlay is being unmounted (issue 16: the umount, a tool
    // run, overlaps the walk): nothing writes through the mount any more, and the upper dir is
    // changed (a blind opaque mark removed) or moved only once the unmount is done
    const unmounted = this.startUnmount();
    unmounted.catch(() => undefined);
    let r: Captured;
    try {
      r = await this.captureUpper(opts, () => unmounted);
    } finally {
      await unmounted;
    }
    const { empty, w } = r;
    // the blob's fsync and rename go on while the snapshot is made (and, blobLater, the next step starts)
    this.host.storing(w.descriptor.digest, r.stored);
    if (!opts.blobLater) await r.stored;
    if (!(await layout.record(w.diffId))) {
      const tmp = layout.tmpPath('commit');
      // two metadata calls, synchronous: awaited, each waits a turn of the thread pool (issue 16)
      mkdirSync(tmp);
      renameSync(this.upper, path.join(tmp, 'diff'));
      await layout.adoptSnapshot(tmp, { diffId: w.diffId, descriptor: w.descriptor });
      // what is left is two empty directories (merged/, work/work/): a few calls, made now; in
      // the background they were a dozen thread pool turns in the way of the next step's calls
      this.cleanupLater(true);
    } else {
      if (!(await layout.record(w.diffId))?.descriptor) await layout.recordOnly({ diffId: w.diffId, descriptor: w.descriptor });
      // a change already stored (a rebuild that wrote what the cache had): its copy goes now when small
      this.cleanupLater(r.entries <= SMALL_CHANGE);
    }
    return { empty, diffId: w.diffId, descriptor: w.descriptor, size: w.uncompressedSize };
  }

  /** Unmount the overlay (if mounted); on failure it counts as mounted again, for release(). */
  private startUnmount(): Promise<void> {
    if (!this.mountedNow) return Promise.resolve();
    this.mountedNow = false;
    return unmount(this.root).catch((e: unknown) => {
      this.mountedNow = true;
      throw e;
    });
  }

  /** The upper dir as a layer in the blob store. */
  private async captureUpper(opts: CommitOptions, beforeChange: () => Promise<void>): Promise<Captured> {
    const { layout, blobs } = this.host;
    // one small readdir: synchronous, an awaited one is a thread-pool turn (issue 16)
    const empty = readdirSync(this.upper).length === 0;
    const xattrs = empty ? new Map() : await readXattrsTree(this.upper);
    const lowers = this.lowers.map((d) => path.join(layout.snapshot(d), 'diff')).reverse();
    const opaque = opaqueXattr(this.host.overlayXattrs);
    const counted = { entries: 0 };
    const upperEntries = walkTree(this.upper, xattrs, { overlay: true, opaqueXattr: opaque, counted, ...(opts.signal ? { signal: opts.signal } : {}) });
    const { layer: w, stored } = await writeLayerThenStore(blobs, withoutBlindOpaques(upperEntries, { upper: this.upper, lowers, opaque, beforeChange }), opts);
    return { empty, w, stored, entries: counted.entries };
  }

  private async commitCopy(opts: CommitOptions): Promise<CommitResult> {
    const { layout, blobs } = this.host;
    const base = this.lowers.length === 0 ? layout.empty : layout.chain(chainIds(this.lowers).at(-1)!);
    const [bx, nx] = await Promise.all([readXattrsTree(base), readXattrsTree(this.root)]);
    const owners = this.owners ? { base: await this.host.chainOwners(this.lowers), next: this.owners } : undefined;
    const entries: LayerEntry[] = [];
    for await (const e of diffTrees(base, this.root, bx, nx, { stamps: this.stamps, signal: opts.signal, ...(owners ? { owners } : {}) })) entries.push(e);
    const w = await writeLayer(blobs, fromArray(entries), { ...opts, ...(this.owners ? { owners: this.owners } : {}) });
    await layout.recordOnly({ diffId: w.diffId, descriptor: w.descriptor });
    const chainId = chainIds([...this.lowers, w.diffId]).at(-1)!;
    // the record first: a chain tree without one is rebuilt from the layers
    if (this.owners) await this.owners.save(layout.owners(chainId));
    const chain = layout.chain(chainId);
    await fsp.mkdir(path.dirname(chain), { recursive: true });
    try {
      await fsp.rename(this.root, chain);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw e;
    }
    this.cleanupLater();
    return { empty: entries.length === 0, diffId: w.diffId, descriptor: w.descriptor, size: w.uncompressedSize };
  }

  /**
   * cleanup() off the caller's path, after a commit (the host's settle() awaits it); `small`:
   * the directory holds next to nothing any more, and goes at once.
   */
  private cleanupLater(small = false): void {
    this.host.forget(this);
    if (small) this.host.removeSmall(this.dir);
    else this.host.removeLater(this.dir);
  }

  private async cleanup(): Promise<void> {
    await fsp.rm(this.dir, { recursive: true, force: true });
    this.host.forget(this);
  }

  /** Unmount and remove the mount's work directories. Safe to call twice, and after commit. */
  async release(): Promise<void> {
    if (this.state === 'done') return;
    this.state = 'done';
    if (this.mountedNow) {
      await unmount(this.root);
      this.mountedNow = false;
    }
    await this.cleanup();
  }
}
