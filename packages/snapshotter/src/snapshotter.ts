import { randomBytes } from 'node:crypto';
import { mkdirSync, promises as fsp, rmSync } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { chainIds, unprivilegedIds, type BlobStore, type Descriptor, type Digest } from '@hoist/oci';
import { applyLayer, type ApplyOptions, type ApplyResult } from './apply.js';
import { SnapshotError, throwIfAborted } from './errors.js';
import { layerTar, type LayerTarOptions } from './layer.js';
import { Mounted, type Driver, type MountHost } from './mounted.js';
import { mountOverlay, opaqueXattr, unmount, type OverlayXattrs } from './overlay.js';
import { Ownership } from './owners.js';
import { storeDriver } from './driver-probe.js';
import { loadCompression } from './gzip.js';
import { cleanupStaleWork } from './stale.js';
import { stampTree } from './stamps.js';
import { Layout, pidAlive, type SnapshotRecord } from './store.js';
import { run } from './sys.js';
import type { ReadLimits } from './tar/reader.js';

export interface SnapshotterOptions {
  /** Directory of the snapshots (e.g. `<store>/snapshots`). */
  root: string;
  /** Where layer blobs are read from and committed layers written to. */
  blobs: BlobStore;
  /** Default: `overlay` if a test mount works here, else `copy`. */
  driver?: Driver;
  /**
   * Default: what the store was made with (`overlay-xattrs` file), else `user` inside a user
   * namespace (rootless), else `trusted`.
   */
  overlayXattrs?: OverlayXattrs;
  /** Limits applied to every layer unpacked (gzip bomb, header sizes). */
  limits?: ReadLimits;
}

export interface EnsureLayer {
  diffId: Digest;
  descriptor: Descriptor;
  signal?: AbortSignal;
  /**
   * Brings the blob into the blob store when it is not there (a base layer in a registry). If
   * the download is checked by a LayerChecker made with this snapshotter, the layer is unpacked
   * in the same pass; otherwise it is unpacked from the store afterwards.
   */
  fetch?: () => Promise<unknown>;
}

export interface ReadOnlyView {
  readonly root: string;
  release(): Promise<void>;
}

/**
 * Layer snapshots. `overlay`: every layer is unpacked once into its own directory (keyed by
 * diff_id), a step's root is an overlay of those with a fresh upper dir, and the upper dir is the
 * diff — capture costs O(change). `copy`: for hosts without overlayfs, flattened trees per chain
 * and a compare walk (like Docker's vfs driver), producing the same layers for the same change.
 */
export class Snapshotter implements MountHost {
  readonly layout: Layout;
  private readonly inflight = new Map<string, Promise<void>>();
  /** Layers whose blob ensureLayer is fetching, to be unpacked by the download's content check ({@link unpackFrom}). */
  private readonly unpackWanted = new Set<string>();
  private readonly active = new Set<Mounted>();
  /** Removals of committed mounts' directories still running (see settle). */
  private readonly removals = new Set<Promise<void>>();
  private readonly stores = new Map<Digest, Promise<void>>();

  readonly root: string;
  readonly blobs: BlobStore;
  readonly driver: Driver;
  readonly overlayXattrs: OverlayXattrs;
  private readonly limits: ReadLimits;
  /** The driver was chosen by probing (not asked for). */
  private readonly probed: boolean;
  /**
   * This process cannot give files away (the no-privilege mode): the copy driver keeps an
   * ownership record per chain tree, and mounts carry it (see Ownership).
   */
  readonly recordsOwners: boolean;

  private constructor(o: { root: string; blobs: BlobStore; driver: Driver; overlayXattrs: OverlayXattrs; limits: ReadLimits; probed: boolean }) {
    this.root = o.root;
    this.blobs = o.blobs;
    this.driver = o.driver;
    this.overlayXattrs = o.overlayXattrs;
    this.limits = o.limits;
    this.probed = o.probed;
    this.layout = new Layout(o.root);
    this.recordsOwners = o.driver === 'copy' && unprivilegedIds() !== undefined;
  }

  static async open(opts: SnapshotterOptions): Promise<Snapshotter> {
    const root = path.resolve(opts.root);
    const layout = new Layout(root);
    // a store made before (issue 16: every build opens it) costs a few synchronous reads of
    // tiny files here (see Layout.madeBefore), no write and no probe
    const rootStat = await layout.init();
    const overlayXattrs = opts.overlayXattrs ?? (await layout.overlayXattrs());
    const driver = opts.driver ?? (await storeDriver(layout, overlayXattrs, rootStat.dev));
    const s = new Snapshotter({ root, blobs: opts.blobs, driver, overlayXattrs, limits: opts.limits ?? {}, probed: opts.driver === undefined });
    await s.cleanupStale().catch(() => undefined);
    return s;
  }

  /** The driver as progress output names it. */
  describe(): string {
    if (this.driver === 'copy') return this.probed ? 'copy (overlayfs cannot be mounted here)' : 'copy';
    return this.overlayXattrs === 'user' ? 'overlay (kernel overlayfs inside the user namespace, userxattr)' : 'overlay (kernel overlayfs)';
  }

  /** Is this layer available as a snapshot (unpacked, or recorded for the copy driver)? */
  async has(diffId: Digest): Promise<boolean> {
    const rec = await this.layout.record(diffId);
    return this.driver === 'overlay' ? rec?.link !== undefined : rec !== undefined;
  }

  /**
   * Make a base layer available: unpack its blob (verified; gzip, zstd or none) once into its
   * snapshot dir, keyed by diff_id. Idempotent, atomic (temp dir + rename), safe for concurrent
   * callers (in this process they share the work; across processes the first rename wins).
   */
  async ensureLayer(layer: EnsureLayer): Promise<void> {
    const key = layer.diffId;
    const running = this.inflight.get(key);
    if (running) return running;
    const p = this.doEnsure(layer).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  private async doEnsure(layer: EnsureLayer): Promise<void> {
    if (await this.has(layer.diffId)) return;
    if (layer.fetch && !(await this.blobs.has(layer.descriptor.digest))) {
      // a download verified by a LayerChecker made with this snapshotter unpacks as it comes in
      if (this.driver === 'overlay') this.unpackWanted.add(layer.diffId);
      try {
        await layer.fetch();
      } finally {
        this.unpackWanted.delete(layer.diffId);
      }
      if (await this.has(layer.diffId)) return;
    }
    if (this.driver === 'copy') {
      if (!(await this.blobs.has(layer.descriptor.digest))) {
        throw new SnapshotError('SNAPSHOT_UNKNOWN', `layer blob ${layer.descriptor.digest} is not in the blob store`);
      }
      await this.layout.recordOnly({ diffId: layer.diffId, descriptor: stripDesc(layer.descriptor) });
      return;
    }
    await this.unpack(() => this.blobs.get(layer.descriptor), layer);
  }

  /**
   * Unpack a layer's blob (verified against its diff_id) into a temp dir and adopt it as the
   * snapshot. `open` is called only when the unpacker reads it: a stream opened earlier could
   * fail (a corrupt blob's digest) before anything listens, an uncaught error.
   */
  private async unpack(open: () => Readable | AsyncIterable<Buffer>, layer: { diffId: Digest; descriptor: Descriptor; signal?: AbortSignal }): Promise<void> {
    const tmp = this.layout.tmpPath('layer');
    try {
      await fsp.mkdir(path.join(tmp, 'diff'), { recursive: true });
      await applyLayer(open(), path.join(tmp, 'diff'), {
        ...this.limits,
        whiteouts: 'overlay',
        opaqueXattr: opaqueXattr(this.overlayXattrs),
        diffId: layer.diffId,
        ...(layer.signal ? { signal: layer.signal } : {}),
      });
      await this.blobs.noteVerifiedLayer(layer.descriptor.digest, layer.diffId);
      await this.layout.adoptSnapshot(tmp, { diffId: layer.diffId, descriptor: stripDesc(layer.descriptor) });
    } finally {
      await fsp.rm(tmp, { recursive: true, force: true });
    }
  }

  /**
   * While ensureLayer fetches a layer's blob: unpack the bytes of the download as they arrive
   * (the download's content check), instead of checking them and unpacking the stored blob
   * afterwards. The snapshot is adopted only when the stream ended, i.e. when the downloader
   * verified the blob's digest (a content check is ended only then), and only if the content
   * hashes to the diff_id. Undefined when no ensureLayer waits for this layer.
   */
  unpackFrom(layer: Descriptor, diffId: Digest, src: AsyncIterable<Buffer>): Promise<void> | undefined {
    if (!this.unpackWanted.has(diffId)) return undefined;
    return this.unpack(() => src, { diffId, descriptor: layer });
  }

  /**
   * A writable root over `lowerDiffIds` (bottom first; every one ensured or committed before).
   * Always `release()` it, also on error paths.
   */
  async mount(lowerDiffIds: readonly Digest[], opts: { signal?: AbortSignal } = {}): Promise<Mounted> {
    throwIfAborted(opts.signal);
    const lowers = [...lowerDiffIds];
    const dir = path.join(this.layout.mounts, `${process.pid}-${randomBytes(6).toString('hex')}`);
    // four tiny mkdirs, synchronous: awaited, each queued behind the thread pool's other work (issue 16)
    mkdirSync(dir, { recursive: true });
    try {
      if (this.driver === 'overlay') {
        const links = await this.lowerLinks(lowers, false);
        for (const d of ['upper', 'work', 'merged']) mkdirSync(path.join(dir, d));
        const rel = path.relative(this.layout.links, dir);
        // what is mounted writable is committed: zlib loads while the mount runs in its shell
        setImmediate(loadCompression);
        await mountOverlay({ cwd: this.layout.links, lowers: links, upper: `${rel}/upper`, work: `${rel}/work`, target: path.join(dir, 'merged'), xattrs: this.overlayXattrs });
        return this.track(new Mounted(this, dir, path.join(dir, 'merged'), lowers, true));
      }
      const tree = await this.chainTree(lowers, opts.signal);
      const root = path.join(dir, 'root');
      await run('cp', ['-a', '--reflink=auto', '--', tree, root], opts.signal ? { signal: opts.signal } : {});
      const stamps = await stampTree(root, dir, opts.signal);
      const owners = this.recordsOwners ? await this.chainOwners(lowers) : undefined;
      return this.track(new Mounted(this, dir, root, lowers, false, stamps, owners));
    } catch (e) {
      await fsp.rm(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** A read-only view of a chain (e.g. a `COPY --from` source) without copying. */
  async view(lowerDiffIds: readonly Digest[], opts: { signal?: AbortSignal } = {}): Promise<ReadOnlyView> {
    throwIfAborted(opts.signal);
    const lowers = [...lowerDiffIds];
    if (this.driver === 'copy') {
      const tree = lowers.length === 0 ? this.layout.empty : await this.chainTree(lowers, opts.signal);
      return { root: tree, release: async () => undefined };
    }
    const dir = path.join(this.layout.mounts, `${process.pid}-${randomBytes(6).toString('hex')}`);
    const target = path.join(dir, 'merged');
    await fsp.mkdir(target, { recursive: true });
    let mounted = false;
    const release = async (): Promise<void> => {
      if (mounted) await unmount(target);
      mounted = false;
      await fsp.rm(dir, { recursive: true, force: true });
    };
    try {
      await mountOverlay({ cwd: this.layout.links, lowers: await this.lowerLinks(lowers, true), target, xattrs: this.overlayXattrs });
      mounted = true;
    } catch (e) {
      await release();
      throw e;
    }
    return { root: target, release };
  }

  /** Flatten a chain into a plain directory (created if missing): for `--output type=local` and COPY --from. */
  async exportTree(lowerDiffIds: readonly Digest[], destDir: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    await fsp.mkdir(destDir, { recursive: true });
    if (lowerDiffIds.length === 0) return;
    const v = await this.view(lowerDiffIds, opts);
    try {
      await run('cp', ['-a', '--reflink=auto', '--', `${v.root}/.`, destDir], opts.signal ? { signal: opts.signal } : {});
    } finally {
      await v.release();
    }
  }

  /** Short link names for an overlay mount, top first; `readonly` views need >= 2 lowers. */
  private async lowerLinks(lowers: Digest[], readonly: boolean): Promise<string[]> {
    const links: string[] = [];
    // overlayfs refuses a directory twice ("conflicting lowerdir path"); an image may hold the
    // same layer twice (e.g. two empty layers). Applying a layer is idempotent, so keeping only
    // its topmost occurrence gives the same tree.
    for (let i = lowers.length - 1; i >= 0; i--) {
      const link = await this.layout.linkOf(lowers[i]!);
      if (!links.includes(link)) links.push(link);
    }
    if (links.length === 0 || (readonly && links.length < 2)) links.push('../empty');
    return links;
  }

  /**
   * No-privilege mode: the ownership record of a chain's tree (empty for no layers). The tree
   * was built with it (chainTree), so it is there.
   */
  async chainOwners(lowers: readonly Digest[]): Promise<Ownership> {
    if (lowers.length === 0) return new Ownership();
    const file = this.layout.owners(chainIds([...lowers]).at(-1)!);
    const o = await Ownership.load(file);
    if (!o) throw new SnapshotError('SNAPSHOT_UNKNOWN', `the ownership record ${file} of a chain tree is missing`);
    return o;
  }

  /** Copy driver: is the tree of this chain id complete here (with its ownership record, if it needs one)? */
  private async chainReady(chainId: Digest): Promise<boolean> {
    if (!(await exists(this.layout.chain(chainId)))) return false;
    return !this.recordsOwners || (await exists(this.layout.owners(chainId)));
  }

  /** Copy driver: the flattened tree of a chain, built from the longest cached prefix. */
  private async chainTree(lowers: Digest[], signal?: AbortSignal): Promise<string> {
    if (lowers.length === 0) return this.layout.empty;
    const ids = chainIds(lowers);
    const want = this.layout.chain(ids.at(-1)!);
    const key = `chain:${ids.at(-1)}`;
    const running = this.inflight.get(key);
    if (running) {
      await running;
      return want;
    }
    const p = (async (): Promise<void> => {
      let k = lowers.length;
      while (k > 0 && !(await this.chainReady(ids[k - 1]!))) k--;
      if (k === lowers.length) return;
      // a tree without its record (made by an older hoist, or by root) is rebuilt with one
      if (await exists(want)) await this.dropTree(want);
      const tmp = this.layout.tmpPath('chain');
      const owners = this.recordsOwners ? await this.chainOwners(lowers.slice(0, k)) : undefined;
      try {
        if (k > 0) await run('cp', ['-a', '--reflink=auto', '--', this.layout.chain(ids[k - 1]!), tmp], signal ? { signal } : {});
        else await fsp.mkdir(tmp);
        for (let i = k; i < lowers.length; i++) {
          const rec = await this.layout.record(lowers[i]!);
          if (!rec?.descriptor) throw new SnapshotError('SNAPSHOT_UNKNOWN', `layer ${lowers[i]} is unknown here; call ensureLayer first`);
          await applyLayer(this.blobs.get(rec.descriptor), tmp, { ...this.limits, whiteouts: 'flat', diffId: lowers[i]!, ...(owners ? { owners } : {}), ...(signal ? { signal } : {}) });
        }
        if (owners) await owners.save(this.layout.owners(ids.at(-1)!));
        await fsp.mkdir(path.dirname(want), { recursive: true });
        await fsp.rename(tmp, want).catch(async (e: NodeJS.ErrnoException) => {
          if (e.code !== 'EEXIST' && e.code !== 'ENOTEMPTY') throw e;
        });
      } finally {
        await fsp.rm(tmp, { recursive: true, force: true });
      }
    })().finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    await p;
    return want;
  }

  /** Remove a tree atomically (renamed away first). */
  private async dropTree(dir: string): Promise<void> {
    const t = this.layout.tmpPath('remove');
    await fsp.rename(dir, t).catch(() => undefined);
    await fsp.rm(t, { recursive: true, force: true });
  }

  private track(m: Mounted): Mounted {
    this.active.add(m);
    return m;
  }

  /** @internal */
  forget(m: Mounted): void {
    this.active.delete(m);
  }

  /**
   * @internal A committed mount's directory whose upper dir was moved into the store: what is
   * left (the empty mount point, the overlay's empty work dir) goes at once, synchronously (a
   * few system calls; awaited one by one they took 2-4 ms a layer, and in the background they
   * queued in the thread pool ahead of the next step's calls: issue 16). In the background should
   * that fail.
   */
  removeSmall(dir: string): void {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      this.removeLater(dir);
    }
  }

  /**
   * @internal A committed mount's directory is removed off the committing step's path. A
   * removal that fails, or that a killed process never finished, leaves a directory named by
   * this process's pid, which the next start's stale-work cleanup removes.
   */
  removeLater(dir: string): void {
    const p: Promise<void> = fsp
      .rm(dir, { recursive: true, force: true })
      .catch(() => undefined)
      .finally(() => this.removals.delete(p));
    this.removals.add(p);
  }

  /**
   * @internal An overlay commit's layer blob, still being stored (fsync, rename) while the
   * snapshot is made and the next step runs (issue 16). A failure is kept (blobStored reports
   * it while the blob is missing); a later commit of the same blob supersedes it.
   */
  storing(digest: Digest, stored: Promise<void>): void {
    const prev = this.stores.get(digest);
    const p = prev ? prev.then(() => stored, () => stored) : stored;
    p.catch(() => undefined);
    this.stores.set(digest, p);
    p.then(() => {
      if (this.stores.get(digest) === p) this.stores.delete(digest);
    }, () => undefined);
  }

  /**
   * Resolves once the blob of a layer this snapshotter committed is in the blob store (at once
   * for any other); rejects if storing it failed. Await it before anything refers to the blob
   * durably (a cache record) or reads it.
   */
  blobStored(digest: Digest): Promise<void> {
    const p = this.stores.get(digest);
    if (!p) return Promise.resolve();
    // a failed store counts only while the blob is missing (it may have come in since, pulled)
    return p.catch(async (e: unknown) => {
      if (!(await this.blobs.has(digest))) throw e;
    });
  }

  /** blobStored for every blob still being stored, or whose storing failed; the first failure is thrown. */
  async blobsStored(): Promise<void> {
    await Promise.all([...this.stores.keys()].map((d) => this.blobStored(d)));
  }

  /** Wait for the work done off the callers' paths (removals of committed mounts' directories, blobs being stored). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.stores.values()]);
    while (this.removals.size > 0) await Promise.all([...this.removals]);
  }

  /**
   * Remove what crashed processes left behind: mounts and work dirs under `mounts/` and temp
   * dirs under `tmp/` whose owning process is gone. Live processes' work is never touched.
   */
  async cleanupStale(): Promise<{ unmounted: number; removed: number }> {
    return cleanupStaleWork(this.root, (pid) => !pidAlive(pid));
  }

  /** Every layer known here (unpacked, committed, or recorded for the copy driver). */
  async list(): Promise<SnapshotRecord[]> {
    const out: SnapshotRecord[] = [];
    for (const hex of await fsp.readdir(path.join(this.root, 'snapshots')).catch(() => [] as string[])) {
      const rec = await this.layout.record(`sha256:${hex}` as Digest).catch(() => undefined);
      if (rec) out.push(rec);
    }
    return out;
  }

  /**
   * Forget a layer (for prune): its snapshot dir and short link go, atomically (renamed away
   * first). The copy driver's flattened chain trees are a cache and all go with it. Mounts
   * using the layer must be released first.
   */
  async remove(diffId: Digest): Promise<boolean> {
    const rec = await this.layout.record(diffId);
    if (!rec) return false;
    this.layout.forget(diffId);
    const trash = this.layout.tmpPath('remove');
    await fsp.rename(this.layout.snapshot(diffId), trash);
    if (rec.link) await fsp.rm(path.join(this.layout.links, rec.link), { force: true });
    await fsp.rm(trash, { recursive: true, force: true });
    if (this.driver === 'copy') {
      const chains = path.join(this.root, 'chains');
      for (const c of await fsp.readdir(chains).catch(() => [] as string[])) {
        const t = this.layout.tmpPath('remove');
        await fsp.rename(path.join(chains, c), t);
        await fsp.rm(t, { recursive: true, force: true });
      }
      await this.dropTree(path.join(this.root, 'owners'));
    }
    return true;
  }

  /** Mounts from this instance not yet committed or released. */
  get activeMounts(): number {
    return this.active.size;
  }

  layerTar(dir: string, opts: LayerTarOptions = {}): Readable {
    return layerTar(dir, opts);
  }

  applyLayer(stream: Readable | AsyncIterable<Buffer>, dir: string, opts: ApplyOptions = {}): Promise<ApplyResult> {
    return applyLayer(stream, dir, { ...this.limits, ...opts });
  }
}

function stripDesc(d: Descriptor): Descriptor {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size };
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.access(p);
    return true;
  } catch {
    return false;
  }
}
