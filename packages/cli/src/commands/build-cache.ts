import type { BuildResult, RemoteCache } from '@hoist/builder';
import { CacheError, LocalCacheSource, RegistryCacheSource, exportCacheToDir, exportCacheToRegistry, parseCacheSpec, type CacheEntry, type CacheSpec } from '@hoist/cache';
import type { ImageStore } from '@hoist/oci';
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
  exportAll(result: BuildResult, signal: AbortSignal, log: (s: string) => void): Promise<void>;
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
    log(`importing cache from ${where}: ${src.size} records\n`);
    sources.push(src);
    if (src instanceof RegistryCacheSource) mountFrom.push(src.repository);
  }
  return {
    sources,
    mountFrom,
    exportAll: async (result, sig, out) => {
      for (const s of toSpecs) {
        const records = selectRecords(result, s.mode);
        const fetch = async (d: { digest: string }): Promise<void> => {
          const src = sources.find((c) => c.hasLayer(d as never));
          if (!src) throw new UsageError(`cannot export cache: layer ${d.digest} is in no store`);
          await src.fetchLayer(d as never, { signal: sig });
        };
        if (s.type === 'registry') {
          const d = await exportCacheToRegistry(client, store, records, s.ref, s.mode, { signal: sig, mountFrom });
          out(`exported cache (${records.length} records, mode=${s.mode}) to ${s.ref} ${d.digest}\n`);
        } else {
          const d = await exportCacheToDir(store, records, s.dir, s.mode, fetch as never);
          out(`exported cache (${records.length} records, mode=${s.mode}) to ${s.dir} ${d.digest}\n`);
        }
      }
    },
  };
}

/** `min`: the records of the final image's layers; `max`: those of every stage the build needed. */
export function selectRecords(result: BuildResult, mode: 'min' | 'max'): CacheEntry[] {
  return result.cacheRecords[mode] as CacheEntry[];
}
