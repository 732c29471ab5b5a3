import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { BlobStore, MediaType, parseIndex, parseManifest, writeFileAtomic, type Descriptor, type Digest, type ImageStore, type LayerOpenOptions, type LayerOrigin, type Manifest } from '@hoist/oci';
import { boundRecords, isBounded, mergeMounts, mergeRecords, type Bounds } from './bound.js';
import { writeCacheManifest } from './build-config.js';
import { CacheError } from './errors.js';
import { CacheSource, parseCacheConfig } from './source.js';
import type { CacheConfig, CacheEntry, CacheMode, CacheMountEntry } from './format.js';

const REF_NAME = 'org.opencontainers.image.ref.name';
const CACHE_TAG = 'hoist-cache';

/** The cache artifact of an OCI layout directory, or undefined when the directory holds none. */
export async function readLocalCache(dir: string): Promise<{ layout: BlobStore; descriptor: Descriptor; manifest: Manifest; config: CacheConfig } | undefined> {
  let rawIndex: Buffer;
  try {
    rawIndex = await fsp.readFile(path.join(dir, 'index.json'));
  } catch {
    return undefined;
  }
  const index = parseIndex(rawIndex).value;
  const descriptor = index.manifests.find((m) => m.annotations?.[REF_NAME] === CACHE_TAG) ?? index.manifests[0];
  if (!descriptor) throw new CacheError('CACHE_INVALID', `${dir}/index.json lists no cache manifest`);
  const layout = new BlobStore(dir);
  const manifest = parseManifest(await layout.getBytes(descriptor)).value;
  const config = parseCacheConfig(await layout.getBytes(manifest.config), manifest.config, dir);
  return { layout, descriptor, manifest, config };
}

/** A cache in an OCI layout directory (`--cache-from type=local,src=DIR`). */
export class LocalCacheSource extends CacheSource {
  private constructor(
    private readonly layout: BlobStore,
    private readonly store: ImageStore,
    dir: string,
    config: CacheConfig,
    layers: Descriptor[],
  ) {
    super(dir, config, layers);
  }

  static async load(store: ImageStore, dir: string): Promise<LocalCacheSource | undefined> {
    const found = await readLocalCache(dir);
    return found && new LocalCacheSource(found.layout, store, dir, found.config, found.manifest.layers);
  }

  get origin(): LayerOrigin {
    return { kind: 'cache', where: this.where };
  }

  async openLayer(desc: Descriptor): Promise<Readable> {
    return this.layout.get(desc);
  }

  async fetchLayerInto(desc: Descriptor, blobs: BlobStore, opts: LayerOpenOptions): Promise<void> {
    if (await blobs.has(desc.digest)) return;
    await blobs.put(this.layout.get(desc), { expected: { digest: desc.digest, size: desc.size }, ...(opts.signal ? { signal: opts.signal } : {}) });
  }

  async fetchLayer(desc: Descriptor, opts: { signal?: AbortSignal }): Promise<void> {
    await this.fetchLayerInto(desc, this.store.blobs, opts);
  }
}

export interface LocalExport extends Bounds {
  records: CacheEntry[];
  dir: string;
  mode: CacheMode;
  /** Keys the build took from imported caches (stamped as used now if the directory keeps them). */
  used?: ReadonlySet<string>;
  now?: Date;
  /** Brings a layer only an imported cache has into the store. */
  fetchMissing?: (d: Descriptor) => Promise<void>;
  /** Cache mounts of this build to export (`cache-mounts=true`); their layers are in the store. */
  mounts?: CacheMountEntry[];
}

export interface ExportResult {
  descriptor: Descriptor;
  /** Records in the new artifact. */
  records: number;
  /** Records the bounds dropped. */
  dropped: number;
  /** Blobs (or, for a registry, manifests and blobs) deleted because nothing references them any more. */
  deleted: number;
}

/** The records at `dir` now (none when the directory holds a cache of another format version). */
async function existingRecords(dir: string): Promise<{ records: CacheEntry[]; mounts?: CacheMountEntry[]; previous?: Manifest & { digest: Digest } }> {
  try {
    const found = await readLocalCache(dir);
    if (!found) return { records: [] };
    return { records: found.config.records, ...(found.config.mounts ? { mounts: found.config.mounts } : {}), previous: { ...found.manifest, digest: found.descriptor.digest } };
  } catch (e) {
    if (e instanceof CacheError && e.code === 'CACHE_VERSION') return { records: [] };
    throw e;
  }
}

/**
 * Export cache records into an OCI layout directory (blobs copied, verified; index.json switched
 * atomically). The records already there are kept (merged); with `ttlMs`/`maxEntries` those
 * unused for too long, or past the N most recently used, are dropped, and the blobs only the
 * replaced artifact used are deleted.
 */
export async function exportCacheToDir(store: ImageStore, x: LocalExport): Promise<ExportResult> {
  const now = x.now ?? new Date();
  const existing = await existingRecords(x.dir);
  const merged = mergeRecords({ existing: existing.records, fresh: x.records, used: x.used ?? new Set(), now });
  const { kept, dropped } = boundRecords(merged, { ...x, now });
  const mounts = mergeMounts(existing.mounts, x.mounts, { ...x, now });
  const { descriptor, manifest, layers } = await writeCacheManifest(store.blobs, { records: kept, mode: x.mode, mounts });
  const layout = new BlobStore(x.dir);
  await fsp.mkdir(layout.blobsDir, { recursive: true });
  for (const d of [...layers, manifest.config, descriptor]) {
    if (await layout.has(d.digest)) continue;
    if (!(await store.blobs.has(d.digest))) {
      if (!x.fetchMissing) throw new CacheError('CACHE_LAYER_MISSING', `layer ${d.digest} is not in the local store; cannot export it to ${x.dir}`);
      await x.fetchMissing(d);
    }
    await layout.put(store.blobs.get(d), { expected: { digest: d.digest, size: d.size } });
  }
  await writeIndex(x.dir, descriptor, manifest);
  let deleted = 0;
  if (isBounded(x) && existing.previous) deleted = await deleteUnused(layout, existing.previous, { ...manifest, digest: descriptor.digest });
  return { descriptor, records: kept.length, dropped: dropped.length, deleted };
}

async function writeIndex(dir: string, descriptor: Descriptor, manifest: Manifest): Promise<void> {
  await writeFileAtomic(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const index = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: [{ ...descriptor, artifactType: manifest.artifactType, annotations: { [REF_NAME]: CACHE_TAG } }],
  };
  await writeFileAtomic(path.join(dir, 'index.json'), JSON.stringify(index, null, 2) + '\n');
}

/** Every blob a cache manifest uses, itself included. */
export function artifactBlobs(m: Manifest & { digest: Digest }): Set<string> {
  return new Set([m.digest, m.config.digest, ...m.layers.map((l) => l.digest)]);
}

/** Delete the blobs of `old` that `current` does not use; returns how many went. */
async function deleteUnused(layout: BlobStore, old: Manifest & { digest: Digest }, current: Manifest & { digest: Digest }): Promise<number> {
  const keep = artifactBlobs(current);
  let n = 0;
  for (const d of artifactBlobs(old)) {
    if (keep.has(d) || !(await layout.has(d as Digest))) continue;
    await layout.delete(d as Digest);
    n++;
  }
  return n;
}

export interface LocalPrune extends Bounds {
  dir: string;
  now?: Date;
}

/**
 * `hoist cache prune --local DIR`: drop records by age/count (the artifact is rewritten), then
 * delete every blob of the directory the artifact does not use (leftovers of earlier exports).
 */
export async function pruneLocalCache(store: ImageStore, p: LocalPrune): Promise<ExportResult & { bytes: number }> {
  const found = await readLocalCache(p.dir);
  if (!found) throw new CacheError('CACHE_INVALID', `${p.dir} holds no hoist build cache (no index.json)`);
  const now = p.now ?? new Date();
  let current = { ...found.manifest, digest: found.descriptor.digest };
  let result: ExportResult = { descriptor: found.descriptor, records: found.config.records.length, dropped: 0, deleted: 0 };
  if (isBounded(p)) {
    const { kept, dropped } = boundRecords(found.config.records, { ...p, now });
    if (dropped.length > 0) {
      const written = await writeCacheManifest(store.blobs, { records: kept, mode: found.config.mode, mounts: mergeMounts(found.config.mounts, [], { ...p, now }) });
      for (const d of [written.manifest.config, written.descriptor]) if (!(await found.layout.has(d.digest))) await found.layout.put(store.blobs.get(d), { expected: d });
      await writeIndex(p.dir, written.descriptor, written.manifest);
      current = { ...written.manifest, digest: written.descriptor.digest };
      result = { descriptor: written.descriptor, records: kept.length, dropped: dropped.length, deleted: 0 };
    }
  }
  const keep = artifactBlobs(current);
  let bytes = 0;
  for await (const d of found.layout.list()) {
    if (keep.has(d)) continue;
    bytes += (await found.layout.stat(d))?.size ?? 0;
    await found.layout.delete(d);
    result.deleted++;
  }
  return { ...result, bytes };
}
