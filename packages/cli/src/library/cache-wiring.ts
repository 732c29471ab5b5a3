import { snapshotCacheMount, type BuildResult, type RemoteCache } from '@hoist/builder';
import { CacheError, LocalCacheSource, RegistryCacheSource, exportCacheToDir, exportCacheToRegistry, parseCacheSpec, type CacheEntry, type CacheMountEntry, type CacheSource, type CacheSpec } from '@hoist/cache';
import type { Descriptor, ImageStore } from '@hoist/oci';
import type { RegistryClient } from '@hoist/registry-client';
import { UsageError } from '../errors.js';

function specs(values: string[], direction: 'to' | 'from'): CacheSpec[] {
  try {
    return values.map((v) => parseCacheSpec(v, direction));
  } catch (e) {
    if (e instanceof CacheError) throw new UsageError(e.message);
    throw e;
  }
}

export interface CacheWiring {
  sources: Array<RemoteCache & { where: string; size: number }>;
  exportAll(result: Pick<BuildResult, 'cacheRecords' | 'cacheMounts'>, signal: AbortSignal, log: (s: string) => void): Promise<void>;
  /** Repositories (same registry) that imported cache blobs can be mounted from when pushing. */
  mountFrom: string[];
}

/**
 * One `--cache-from` source, or undefined (with a warning) when there is no cache there yet, or
 * only one an older hoist wrote (its keys cannot match: the build goes on as a first build would).
 */
async function importSource(
  s: CacheSpec,
  d: { store: ImageStore; client: RegistryClient; signal: AbortSignal },
  log: (s: string) => void,
): Promise<LocalCacheSource | RegistryCacheSource | undefined> {
  const where = s.type === 'registry' ? s.ref : s.dir;
  try {
    const src = s.type === 'registry' ? await RegistryCacheSource.load(d.client, d.store, s.ref, d.signal) : await LocalCacheSource.load(d.store, s.dir);
    if (!src) log(`WARNING: --cache-from ${where}: no cache there yet (first build?); continuing without it\n`);
    return src;
  } catch (e) {
    if (!(e instanceof CacheError && e.code === 'CACHE_VERSION')) throw e;
    log(`WARNING: --cache-from ${e.message}; continuing without it\n`);
    return undefined;
  }
}

/** `--cache-from` sources (only their manifests are fetched now) and `--cache-to` exports. */
export async function wireCache(
  store: ImageStore,
  client: RegistryClient,
  from: string[],
  to: string[],
  signal: AbortSignal,
  log: (s: string) => void,
): Promise<CacheWiring> {
  const fromSpecs = specs(from, 'from');
  const toSpecs = specs(to, 'to');
  const sources: CacheWiring['sources'] = [];
  const mountFrom: string[] = [];
  for (const s of fromSpecs) {
    const where = s.type === 'registry' ? s.ref : s.dir;
    const src = await importSource(s, { store, client, signal }, log);
    if (!src) continue;
    if (s.cacheMounts === false) src.ignoreMounts();
    const mounts = src.config.mounts?.length && s.cacheMounts !== false ? `, ${src.config.mounts.length} cache mounts` : '';
    log(`importing cache from ${where}: ${src.size} records${mounts}\n`);
    sources.push(src);
    if (src instanceof RegistryCacheSource) mountFrom.push(src.repository);
  }
  return {
    sources,
    mountFrom,
    exportAll: async (result, sig, out) => {
      const used = new Set(sources.flatMap((src) => [...(src as CacheSource).hits]));
      const mounts = toSpecs.some((s) => s.cacheMounts) ? await packMounts(store, result, sig, out) : [];
      for (const s of toSpecs) await exportOne(s, { store, client, result, used, sources, mountFrom, mounts: s.cacheMounts ? mounts : [], signal: sig, log: out });
    },
  };
}

interface ExportDeps {
  store: ImageStore;
  client: RegistryClient;
  result: Pick<BuildResult, 'cacheRecords'>;
  used: Set<string>;
  sources: CacheWiring['sources'];
  mountFrom: string[];
  /** The build's cache mounts, packed (for `cache-mounts=true`). */
  mounts: CacheMountEntry[];
  signal: AbortSignal;
  log: (s: string) => void;
}

function mib(n: number): string {
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** Pack the cache mounts the build's steps used into content-addressed layers in the store. */
async function packMounts(store: ImageStore, result: Pick<BuildResult, 'cacheMounts'>, signal: AbortSignal, log: (s: string) => void): Promise<CacheMountEntry[]> {
  const out: CacheMountEntry[] = [];
  const now = new Date().toISOString();
  for (const m of result.cacheMounts ?? []) {
    const p = await snapshotCacheMount(m.dir, store.blobs, signal);
    log(`cache mount ${m.key.split('\0')[0]!}: ${p.files} files, ${mib(p.bytes)} in ${p.layers.length} layers\n`);
    out.push({ key: m.key, layers: p.layers, files: p.files, bytes: p.bytes, lastUsed: now });
  }
  return out;
}

function bounds(s: CacheSpec): string {
  const parts = [`mode=${s.mode}`];
  if (s.ttlMs !== undefined) parts.push(`ttl=${s.ttlMs / 1000}s`);
  if (s.maxEntries !== undefined) parts.push(`max-entries=${s.maxEntries}`);
  return parts.join(', ');
}

/** One `--cache-to`: merged with what is there, bounded, and (bounded registry caches) reclaimed. */
async function exportOne(s: CacheSpec, d: ExportDeps): Promise<void> {
  const records = selectRecords(d.result, s.mode);
  const common = { records, mode: s.mode, used: d.used, ...(d.mounts.length ? { mounts: d.mounts } : {}), ...(s.ttlMs !== undefined ? { ttlMs: s.ttlMs } : {}), ...(s.maxEntries !== undefined ? { maxEntries: s.maxEntries } : {}) };
  const fetchMissing = async (desc: Descriptor): Promise<void> => {
    const src = d.sources.find((c) => c.hasLayer(desc));
    if (!src) throw new UsageError(`cannot export cache: layer ${desc.digest} is in no store`);
    await src.fetchLayer(desc, { signal: d.signal });
  };
  const where = s.type === 'registry' ? s.ref : s.dir;
  if (s.type === 'local') {
    const r = await exportCacheToDir(d.store, { ...common, dir: s.dir, fetchMissing });
    const gone = s.ttlMs !== undefined || s.maxEntries !== undefined ? `; ${r.dropped} records dropped, ${r.deleted} blobs deleted` : '';
    d.log(`exported cache (${r.records} records, ${bounds(s)}) to ${where} ${r.descriptor.digest}${gone}\n`);
    return;
  }
  const r = await exportCacheToRegistry(d.client, d.store, { ...common, ref: s.ref, signal: d.signal, mountFrom: d.mountFrom });
  const dropped = s.ttlMs !== undefined || s.maxEntries !== undefined ? `; ${r.dropped} records dropped` : '';
  const gone = r.reclaimed ? `, ${r.reclaimed.manifests} old artifacts and ${r.reclaimed.blobs} blobs deleted` : '';
  d.log(`exported cache (${r.records} records, ${bounds(s)}) to ${where} ${r.descriptor.digest}${dropped}${gone}\n`);
  if (r.reclaimError) d.log(`WARNING: could not delete the cache artifacts ${where} replaced: ${r.reclaimError.message}\n`);
}

/** `min`: the records of the final image's layers; `max`: those of every stage the build needed. */
export function selectRecords(result: Pick<BuildResult, 'cacheRecords'>, mode: 'min' | 'max'): CacheEntry[] {
  return result.cacheRecords[mode] as CacheEntry[];
}
