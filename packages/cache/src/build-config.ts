import { canonicalJson, MediaType, type BlobStore, type Descriptor, type Manifest } from '@hoist/oci';
import { CACHE_ARTIFACT_TYPE, CACHE_CONFIG_MEDIA_TYPE, CACHE_FORMAT_VERSION, type CacheConfig, type CacheEntry, type CacheMode, type CacheMountEntry } from './format.js';

/** Only the fields of the format: whatever else a record object carries is not exported. */
function entry(r: CacheEntry): CacheEntry {
  return {
    key: r.key,
    created: r.created,
    ...(r.layer ? { layer: { descriptor: r.layer.descriptor, diffId: r.layer.diffId } } : {}),
    ...(r.inputDigests ? { inputDigests: r.inputDigests } : {}),
    ...(r.parent ? { parent: r.parent } : {}),
    ...(r.lastUsed ? { lastUsed: r.lastUsed } : {}),
  };
}

export interface CacheManifestInput {
  records: CacheEntry[];
  mode: CacheMode;
  /** Earlier artifacts at the same ref not deleted yet (registry exports). */
  superseded?: string[];
  /** Exported cache mounts (their layers are listed in the manifest too). */
  mounts?: CacheMountEntry[];
}

function mountEntry(m: CacheMountEntry): CacheMountEntry {
  return { key: m.key, layers: m.layers.map((d) => ({ mediaType: d.mediaType, digest: d.digest, size: d.size })), files: m.files, bytes: m.bytes, lastUsed: m.lastUsed };
}

/** Write the cache artifact's config and manifest blobs into `blobs`; layers are referenced, not copied. */
export async function writeCacheManifest(blobs: BlobStore, input: CacheManifestInput): Promise<{ descriptor: Descriptor; manifest: Manifest; layers: Descriptor[] }> {
  const unique = new Map<string, CacheEntry>();
  for (const r of input.records) unique.set(r.key, entry(r));
  const sorted = [...unique.values()].sort((a, b) => (a.key < b.key ? -1 : 1));
  const superseded = input.superseded?.length ? { superseded: input.superseded } : {};
  const mounts = [...(input.mounts ?? [])].map(mountEntry).sort((a, b) => (a.key < b.key ? -1 : 1));
  const config: CacheConfig = { version: CACHE_FORMAT_VERSION, mode: input.mode, records: sorted, ...superseded, ...(mounts.length ? { mounts } : {}) };
  const configDesc = await blobs.putBytes(canonicalJson(config), CACHE_CONFIG_MEDIA_TYPE);
  const layers = new Map<string, Descriptor>();
  for (const r of sorted) {
    if (r.layer) {
      const d = r.layer.descriptor;
      layers.set(d.digest, { mediaType: d.mediaType, digest: d.digest, size: d.size });
    }
  }
  for (const m of mounts) for (const d of m.layers) layers.set(d.digest, d);
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType: CACHE_ARTIFACT_TYPE,
    config: configDesc,
    layers: [...layers.values()],
  };
  const descriptor = await blobs.putBytes(canonicalJson(manifest), MediaType.OciManifest);
  return { descriptor, manifest, layers: [...layers.values()] };
}
