import type { Descriptor, Digest } from '@hoist/oci';

/**
 * The exported build cache is an OCI artifact: an image manifest whose `artifactType` and
 * config media type are hoist's, whose config lists the cache records, and whose `layers`
 * are every layer blob the records name (so the registry keeps them and can mount them).
 */
export const CACHE_ARTIFACT_TYPE = 'application/vnd.hoist.build-cache.v1';
export const CACHE_CONFIG_MEDIA_TYPE = 'application/vnd.hoist.build-cache.config.v1+json';
/**
 * 2: a record keeps one digest per input of its key (`inputDigests`), never a value (version 1
 * kept the inputs themselves, build args in plain text), and keys hash build args apart.
 */
export const CACHE_FORMAT_VERSION = 2;

export interface CacheEntry {
  /** The cache key (hex sha256): machine-independent by construction. */
  key: string;
  /** When the step first ran; reused so that builds from the cache are byte-identical. */
  created: string;
  layer?: { descriptor: Descriptor; diffId: Digest };
  /**
   * A digest per input of the key (salted with the parent key; `op` and variable names in
   * clear, values never), for `--explain-cache` on another machine.
   */
  inputDigests?: Record<string, string>;
  /** The parent key: lets another machine explain a miss against this record. */
  parent?: string;
}

export interface CacheConfig {
  version: typeof CACHE_FORMAT_VERSION;
  /** `min`: the records of the final image's layers; `max`: those of every stage the build needed. */
  mode: 'min' | 'max';
  records: CacheEntry[];
}

export type CacheMode = CacheConfig['mode'];
