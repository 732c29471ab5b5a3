import { BlobLayer, type BlobStore, type Descriptor, type Digest, type Layer, type LayerOpenOptions, type LayerOrigin, type LayerProvider } from '@hoist/oci';
import type { Readable } from 'node:stream';
import { CacheError } from './errors.js';
import { CACHE_CONFIG_MEDIA_TYPE, CACHE_FORMAT_READABLE, type CacheConfig, type CacheEntry, type CacheMountEntry } from './format.js';

/** An imported cache: records by key, and the layer blobs it can provide (as lazy layers). */
export abstract class CacheSource implements LayerProvider {
  private readonly byKey = new Map<string, CacheEntry>();
  private readonly layers = new Set<string>();
  private readonly byParent = new Map<string, CacheEntry[]>();
  private readonly mounts = new Map<string, CacheMountEntry>();
  /** Keys a build took from this cache: they count as used at the next export. */
  readonly hits = new Set<string>();

  protected constructor(readonly where: string, readonly config: CacheConfig, layers: Descriptor[]) {
    for (const r of config.records) {
      this.byKey.set(r.key, r);
      if (r.parent) this.byParent.set(r.parent, [...(this.byParent.get(r.parent) ?? []), r]);
    }
    for (const l of layers) this.layers.add(l.digest);
    for (const m of config.mounts ?? []) this.mounts.set(m.key, m);
  }

  /** `--cache-from …,cache-mounts=false`: records only, never seed a cache mount from here. */
  ignoreMounts(): void {
    this.mounts.clear();
  }

  /** The exported contents of a cache mount, by mount key (undefined when not exported here). */
  mountLayers(key: string): { layers: Descriptor[]; files: number; bytes: number } | undefined {
    const m = this.mounts.get(key);
    return m && m.layers.every((l) => this.layers.has(l.digest)) ? { layers: m.layers, files: m.files, bytes: m.bytes } : undefined;
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

  /** Where this cache is, for the layers it provides. */
  abstract readonly origin: LayerOrigin;

  /** One of this cache's blobs, streamed and verified against its digest. */
  abstract openLayer(desc: Descriptor, opts: LayerOpenOptions): Promise<Readable>;

  /** Bring one of this cache's blobs into `blobs`, verified. */
  abstract fetchLayerInto(desc: Descriptor, blobs: BlobStore, opts: LayerOpenOptions): Promise<void>;

  /** Bring one of this cache's blobs into the store the cache was loaded for. */
  abstract fetchLayer(desc: Descriptor, opts: { signal?: AbortSignal }): Promise<void>;

  /** The layer for a blob of this cache (lazy: nothing is read until it is opened or fetched). */
  layerFor(desc: Descriptor, diffId: Digest): Layer | undefined {
    return this.hasLayer(desc) ? new CacheLayer(this, desc, diffId) : undefined;
  }
}

/** A layer blob in an imported cache (a registry artifact or an OCI layout directory). */
export class CacheLayer extends BlobLayer {
  constructor(
    private readonly source: CacheSource,
    descriptor: Descriptor,
    diffId: Digest,
  ) {
    super(descriptor, diffId, source.origin);
  }

  open(opts: LayerOpenOptions = {}): Promise<Readable> {
    return this.source.openLayer(this.descriptor, opts);
  }

  override async fetchInto(blobs: BlobStore, opts: LayerOpenOptions = {}): Promise<'exists' | 'fetched'> {
    if (await blobs.has(this.descriptor.digest)) return 'exists';
    await this.source.fetchLayerInto(this.descriptor, blobs, opts);
    return 'fetched';
  }
}

/** `2, 3 and 4`. */
function spoken(v: readonly number[]): string {
  return v.length < 2 ? v.join('') : `${v.slice(0, -1).join(', ')} and ${v.at(-1)!}`;
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
    throw new CacheError('CACHE_VERSION', `${where}: cache format version ${String(cfg.version)}, this hoist reads versions ${spoken(CACHE_FORMAT_READABLE)}; the next --cache-to replaces it`);
  }
  return cfg;
}
