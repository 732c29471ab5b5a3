import type { Readable } from 'node:stream';
import { formatReference, parseManifest, parseReference, type BlobStore, type Descriptor, type Digest, type ImageStore, type LayerOpenOptions, type LayerOrigin, type Manifest } from '@hoist/oci';
import { RegistryError, type RegistryClient } from '@hoist/registry-client';
import { boundRecords, isBounded, mergeMounts, mergeRecords, type Bounds } from './bound.js';
import { writeCacheManifest } from './build-config.js';
import { CacheError } from './errors.js';
import { MAX_SUPERSEDED, type CacheConfig, type CacheEntry, type CacheMode, type CacheMountEntry } from './format.js';
import type { ExportResult } from './local.js';
import { atDigest, reclaimSuperseded, type Reclaimed } from './registry-reclaim.js';
import { CacheSource, parseCacheConfig } from './source.js';

/** A cache artifact in a registry: its manifest (with its digest) and config. */
export interface RegistryArtifact {
  ref: string;
  manifest: Manifest & { digest: Digest };
  /** The manifest's size in bytes. */
  size: number;
  config: CacheConfig;
}

function isAbsent(e: unknown): boolean {
  return e instanceof RegistryError && (e.code === 'MANIFEST_UNKNOWN' || e.code === 'NAME_UNKNOWN' || e.status === 404);
}

/** The cache artifact at `ref`, or undefined when the ref does not exist yet. */
export async function readRegistryCache(client: RegistryClient, ref: string, signal?: AbortSignal): Promise<RegistryArtifact | undefined> {
  const full = formatReference(parseReference(ref));
  let fetched;
  try {
    fetched = await client.getManifest(full, signal ? { signal } : {});
  } catch (e) {
    if (isAbsent(e)) return undefined;
    throw e;
  }
  const manifest = { ...parseManifest(fetched.raw).value, digest: fetched.descriptor.digest };
  const raw = await client.fetchBlobBytes(full, manifest.config, signal ? { signal } : {});
  return { ref: full, manifest, size: fetched.raw.length, config: parseCacheConfig(raw, manifest.config, full) };
}

/**
 * A cache imported from a registry. Loading it fetches the cache manifest and its config only;
 * a layer is fetched when the build needs it (lazy).
 */
export class RegistryCacheSource extends CacheSource {
  private constructor(
    private readonly client: RegistryClient,
    private readonly store: ImageStore,
    readonly ref: string,
    config: CacheConfig,
    layers: Descriptor[],
  ) {
    super(ref, config, layers);
  }

  /** The repository (same registry) blobs can be mounted from. */
  get repository(): string {
    return parseReference(this.ref).repository;
  }

  /** Undefined when the ref does not exist yet (the first build of a pipeline). */
  static async load(client: RegistryClient, store: ImageStore, ref: string, signal?: AbortSignal): Promise<RegistryCacheSource | undefined> {
    const a = await readRegistryCache(client, ref, signal);
    return a && new RegistryCacheSource(client, store, a.ref, a.config, a.manifest.layers);
  }

  get origin(): LayerOrigin {
    const r = parseReference(this.ref);
    return { kind: 'cache', where: this.ref, repository: { registry: r.registry, repository: r.repository } };
  }

  openLayer(desc: Descriptor, opts: LayerOpenOptions): Promise<Readable> {
    return this.client.openBlob(this.ref, desc, opts.signal ? { signal: opts.signal } : {});
  }

  async fetchLayerInto(desc: Descriptor, blobs: BlobStore, opts: LayerOpenOptions): Promise<void> {
    await this.client.fetchBlob(this.ref, desc, blobs, opts.signal ? { signal: opts.signal } : {});
  }

  async fetchLayer(desc: Descriptor, opts: { signal?: AbortSignal }): Promise<void> {
    await this.fetchLayerInto(desc, this.store.blobs, opts);
  }
}

export interface RegistryExport extends Bounds {
  records: CacheEntry[];
  ref: string;
  mode: CacheMode;
  used?: ReadonlySet<string>;
  now?: Date;
  signal?: AbortSignal;
  mountFrom?: string[];
  /** Cache mounts of this build to export (`cache-mounts=true`); their layers are in the store. */
  mounts?: CacheMountEntry[];
}

/** What is at the ref before an export: its records, and the artifacts the new one supersedes. */
async function before(client: RegistryClient, x: RegistryExport): Promise<{ records: CacheEntry[]; mounts?: CacheMountEntry[]; superseded: string[] }> {
  const full = formatReference(parseReference(x.ref));
  try {
    const a = await readRegistryCache(client, full, x.signal);
    if (!a) return { records: [], superseded: [] };
    let older = a.config.superseded ?? [];
    // a bounded export deletes them all: list only those still there (the others are gone)
    if (isBounded(x)) older = await stillThere(client, full, older, x.signal);
    return { records: a.config.records, ...(a.config.mounts ? { mounts: a.config.mounts } : {}), superseded: [a.manifest.digest, ...older.filter((d) => d !== a.manifest.digest)].slice(0, MAX_SUPERSEDED) };
  } catch (e) {
    if (!(e instanceof CacheError && e.code === 'CACHE_VERSION')) throw e;
    const old = await client.headManifest(full, x.signal ? { signal: x.signal } : {});
    return { records: [], superseded: old ? [old.digest] : [] };
  }
}

async function stillThere(client: RegistryClient, ref: string, digests: string[], signal?: AbortSignal): Promise<string[]> {
  const r = parseReference(ref);
  const out: string[] = [];
  for (const d of digests) if (await client.headManifest(atDigest(r, d), signal ? { signal } : {})) out.push(d);
  return out;
}

/**
 * Export cache records to a registry as one artifact, merged with the one already at `ref`
 * (records stamped with their last use), bounded by `ttlMs`/`maxEntries`. Layer blobs the
 * registry holds are not sent again; blobs in `mountFrom` repositories are mounted. The
 * manifest put is the switch: concurrent exporters leave one or the other artifact, whole.
 * A bounded export then deletes the artifacts it superseded and the blobs only they used.
 */
export async function exportCacheToRegistry(client: RegistryClient, store: ImageStore, x: RegistryExport): Promise<ExportResult & { reclaimed?: Reclaimed; reclaimError?: RegistryError }> {
  const now = x.now ?? new Date();
  const prior = await before(client, x);
  const merged = mergeRecords({ existing: prior.records, fresh: x.records, used: x.used ?? new Set(), now });
  const { kept, dropped } = boundRecords(merged, { ...x, now });
  const mounts = mergeMounts(prior.mounts, x.mounts, { ...x, now });
  const written = await writeCacheManifest(store.blobs, { records: kept, mode: x.mode, superseded: prior.superseded, mounts });
  const opts = { ...(x.signal ? { signal: x.signal } : {}), ...(x.mountFrom ? { mountFrom: x.mountFrom } : {}) };
  await client.push(store, written.descriptor, x.ref, opts);
  const result = { descriptor: written.descriptor, records: kept.length, dropped: dropped.length, deleted: 0 };
  if (!isBounded(x) || prior.superseded.length === 0) return result;
  const current = { ...written.manifest, digest: written.descriptor.digest };
  try {
    const reclaimed = await reclaimSuperseded(client, { ref: x.ref, current, superseded: prior.superseded, ...(x.signal ? { signal: x.signal } : {}) });
    return { ...result, deleted: reclaimed.manifests + reclaimed.blobs, reclaimed };
  } catch (e) {
    // the new artifact is in place; a registry that refuses deletes keeps the old ones listed
    if (e instanceof RegistryError && e.code === 'UNSUPPORTED') return { ...result, reclaimError: e };
    throw e;
  }
}
