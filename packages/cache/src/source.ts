import type { Descriptor } from '@hoist/oci';
import { CacheError } from './errors.js';
import { CACHE_CONFIG_MEDIA_TYPE, CACHE_FORMAT_READABLE, type CacheConfig, type CacheEntry } from './format.js';

/** An imported cache: records by key, and the layer blobs it can provide. */
export abstract class CacheSource {
  private readonly byKey = new Map<string, CacheEntry>();
  private readonly layers = new Set<string>();
  private readonly byParent = new Map<string, CacheEntry[]>();
  /** Keys a build took from this cache: they count as used at the next export. */
  readonly hits = new Set<string>();

  protected constructor(readonly where: string, readonly config: CacheConfig, layers: Descriptor[]) {
    for (const r of config.records) {
      this.byKey.set(r.key, r);
      if (r.parent) this.byParent.set(r.parent, [...(this.byParent.get(r.parent) ?? []), r]);
    }
    for (const l of layers) this.layers.add(l.digest);
  }

  get size(): number {
    return this.byKey.size;
  }

  async get(key: string): Promise<CacheEntry | undefined> {
    const r = this.byKey.get(key);
    if (r) this.hits.add(key);
    return r;
  }

  /** Records cached on top of `parent` (for --explain-cache). */
  children(parent: string): CacheEntry[] {
    return this.byParent.get(parent) ?? [];
  }

  hasLayer(desc: Descriptor): boolean {
    return this.layers.has(desc.digest);
  }

  abstract fetchLayer(desc: Descriptor, opts: { signal?: AbortSignal }): Promise<void>;
}

export function parseCacheConfig(raw: Buffer, configDesc: Descriptor, where: string): CacheConfig {
  if (configDesc.mediaType !== CACHE_CONFIG_MEDIA_TYPE) {
    throw new CacheError('CACHE_INVALID', `${where} is not a hoist build cache (config media type ${configDesc.mediaType})`);
  }
  let cfg: CacheConfig;
  try {
    cfg = JSON.parse(raw.toString('utf8')) as CacheConfig;
  } catch (e) {
    throw new CacheError('CACHE_INVALID', `${where}: the cache config is not JSON`, { cause: e });
  }
  if (typeof cfg !== 'object' || cfg === null || !Array.isArray(cfg.records)) throw new CacheError('CACHE_INVALID', `${where}: the cache config lists no records`);
  if (!CACHE_FORMAT_READABLE.includes(cfg.version)) {
    throw new CacheError('CACHE_VERSION', `${where}: cache format version ${String(cfg.version)}, this hoist reads versions ${CACHE_FORMAT_READABLE.join(' and ')}; the next --cache-to replaces it`);
  }
  return cfg;
}
