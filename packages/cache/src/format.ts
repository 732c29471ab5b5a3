import type { CacheRecord, Descriptor } from '@hoist/oci';

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
 * 3: a record says when a build last used it (`lastUsed`), and a registry artifact lists the
 * manifests it replaced at its ref that are not deleted yet (`superseded`). Keys are those of 2,
 * so a version 2 cache is still read (its records count as last used when created).
 * 4: the artifact may carry the contents of `RUN --mount=type=cache` directories (`mounts`,
 * written with `cache-mounts=true`), each cut into content-addressed chunk layers. Records are
 * those of 3, so versions 2 and 3 are still read.
 */
export const CACHE_FORMAT_VERSION = 4;
/** The versions this hoist reads. */
export const CACHE_FORMAT_READABLE: readonly number[] = [2, 3, 4];
/** At most this many superseded manifest digests are listed; older ones are left to the registry's own GC. */
export const MAX_SUPERSEDED = 1000;

/** A cache record (the one format, @hoist/oci's CacheRecord) as an exported cache carries it. */
export interface CacheEntry extends CacheRecord {
  /** When a build last ran or hit this step (ISO 8601 with milliseconds); missing in version 2. */
  lastUsed?: string;
}

/**
 * The contents of one cache mount (`RUN --mount=type=cache`), by its mount key (id plus what
 * seeds it, see the builder's cacheMountKey). `layers[0]` holds the directories, the others
 * chunks of files and symlinks cut at content-defined boundaries: a small change to the cache
 * changes a few chunks, and only those are uploaded again. Applied in order they rebuild it.
 */
export interface CacheMountEntry {
  key: string;
  layers: Descriptor[];
  /** Files and bytes (uncompressed) in the mount when it was exported. */
  files: number;
  bytes: number;
  /** When a build last exported this mount (ISO 8601). */
  lastUsed: string;
}

export interface CacheConfig {
  version: number;
  /** `min`: the records of the final image's layers; `max`: those of every stage the build needed. */
  mode: 'min' | 'max';
  records: CacheEntry[];
  /**
   * Digests of earlier artifacts at this ref (registry only) that no export or prune has deleted
   * yet: `hoist cache prune` and bounded exports delete them and the blobs only they used.
   */
  superseded?: string[];
  /** Exported cache mounts (version 4, `cache-mounts=true`). */
  mounts?: CacheMountEntry[];
}

export type CacheMode = CacheConfig['mode'];
