import { parseReference, type BlobStore, type ImageStore, type Manifest } from '@hoist/oci';
import type { RegistryClient } from '@hoist/registry-client';
import { boundRecords, isBounded, lastUsedMs, mergeMounts, type Bounds } from './bound.js';
import { writeCacheManifest } from './build-config.js';
import { CacheError } from './errors.js';
import type { CacheConfig } from './format.js';
import { readLocalCache } from './local.js';
import { readRegistryCache } from './registry.js';
import { atDigest, manifestAt, reclaimSuperseded, type Reclaimed } from './registry-reclaim.js';

export interface CacheUsage {
  where: string;
  version: number;
  mode: string;
  records: number;
  /** Manifest, config and the layers the artifact lists. */
  bytes: number;
  /** Most and least recent last use (ISO), undefined without records. */
  newestUse?: string;
  oldestUse?: string;
  /** Earlier artifacts not deleted yet (registry) or blobs no artifact uses (local). */
  orphans: { count: number; bytes: number };
}

function artifactBytes(m: Manifest & { digest: string }, manifestSize: number): number {
  const layers = new Map(m.layers.map((l) => [l.digest, l.size]));
  return manifestSize + m.config.size + [...layers.values()].reduce((a, b) => a + b, 0);
}

function uses(config: CacheConfig): Pick<CacheUsage, 'newestUse' | 'oldestUse'> {
  const times = config.records.map(lastUsedMs).sort((a, b) => a - b);
  if (times.length === 0) return {};
  return { oldestUse: new Date(times[0]!).toISOString(), newestUse: new Date(times.at(-1)!).toISOString() };
}

/** `hoist cache du --registry REF`: the artifact, and what its superseded artifacts hold that it does not. */
export async function registryCacheUsage(client: RegistryClient, ref: string, signal?: AbortSignal): Promise<CacheUsage> {
  const a = await readRegistryCache(client, ref, signal);
  if (!a) throw new CacheError('CACHE_INVALID', `${ref}: no build cache there`);
  const current = new Set([a.manifest.config.digest, ...a.manifest.layers.map((l) => l.digest)]);
  const orphanBlobs = new Map<string, number>();
  let count = 0;
  for (const d of a.config.superseded ?? []) {
    if (d === a.manifest.digest) continue;
    const m = await manifestAt(client, atDigest(parseReference(a.ref), d), signal);
    if (!m) continue;
    count++;
    for (const b of [m.config, ...m.layers]) if (!current.has(b.digest)) orphanBlobs.set(b.digest, b.size);
  }
  const orphanBytes = [...orphanBlobs.values()].reduce((x, y) => x + y, 0);
  return { where: a.ref, version: a.config.version, mode: a.config.mode, records: a.config.records.length, bytes: artifactBytes(a.manifest, a.size), ...uses(a.config), orphans: { count, bytes: orphanBytes } };
}

/** `hoist cache du --local DIR`. */
export async function localCacheUsage(dir: string): Promise<CacheUsage> {
  const found = await readLocalCache(dir);
  if (!found) throw new CacheError('CACHE_INVALID', `${dir} holds no hoist build cache (no index.json)`);
  const m = { ...found.manifest, digest: found.descriptor.digest };
  const used = new Set([m.digest, m.config.digest, ...m.layers.map((l) => l.digest)]);
  const orphans = await strayBlobs(found.layout, used);
  return { where: dir, version: found.config.version, mode: found.config.mode, records: found.config.records.length, bytes: artifactBytes(m, found.descriptor.size), ...uses(found.config), orphans };
}

async function strayBlobs(layout: BlobStore, used: Set<string>): Promise<{ count: number; bytes: number }> {
  let count = 0;
  let bytes = 0;
  for await (const d of layout.list()) {
    if (used.has(d)) continue;
    count++;
    bytes += (await layout.stat(d))?.size ?? 0;
  }
  return { count, bytes };
}

export interface RegistryPrune extends Bounds {
  ref: string;
  now?: Date;
  signal?: AbortSignal;
}

/**
 * `hoist cache prune --registry REF`: drop records by age/count (a new artifact is pushed; its
 * layers are in the repository already), then delete every superseded artifact and the blobs
 * only they used. `store` holds the new config and manifest until they are pushed.
 */
export async function pruneRegistryCache(client: RegistryClient, store: ImageStore, p: RegistryPrune): Promise<{ records: number; dropped: number; reclaimed: Reclaimed }> {
  const a = await readRegistryCache(client, p.ref, p.signal);
  if (!a) throw new CacheError('CACHE_INVALID', `${p.ref}: no build cache there`);
  let current = a.manifest;
  let superseded = (a.config.superseded ?? []).filter((d) => d !== a.manifest.digest);
  let records = a.config.records.length;
  let dropped = 0;
  if (isBounded(p)) {
    const b = boundRecords(a.config.records, { ...p, now: p.now ?? new Date() });
    if (b.dropped.length > 0) {
      superseded = [a.manifest.digest, ...superseded];
      const mounts = mergeMounts(a.config.mounts, [], { ...p, now: p.now ?? new Date() });
      const written = await writeCacheManifest(store.blobs, { records: b.kept, mode: a.config.mode, superseded, mounts });
      await client.push(store, written.descriptor, p.ref, p.signal ? { signal: p.signal } : {});
      current = { ...written.manifest, digest: written.descriptor.digest };
      records = b.kept.length;
      dropped = b.dropped.length;
    }
  }
  const reclaimed = await reclaimSuperseded(client, { ref: p.ref, current, superseded, ...(p.signal ? { signal: p.signal } : {}) });
  return { records, dropped, reclaimed };
}
