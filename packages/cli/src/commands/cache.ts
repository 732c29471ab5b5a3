import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CacheError, localCacheUsage, parseDuration, pruneLocalCache, pruneRegistryCache, registryCacheUsage, type Bounds, type CacheUsage } from '@hoist/cache';
import { formatSize } from '@hoist/exporter';
import { ImageStore } from '@hoist/oci';
import { UsageError } from '../errors.js';
import { makeRegistryClient } from '../registry.js';

export interface CacheTarget {
  registry?: string;
  local?: string;
  json?: boolean;
}

function target(f: CacheTarget, cmd: string): { registry: string } | { local: string } {
  if (f.registry && f.local) throw new UsageError(`hoist cache ${cmd}: give --registry REF or --local DIR, not both`);
  if (f.registry) return { registry: f.registry };
  if (f.local) return { local: f.local };
  throw new UsageError(`hoist cache ${cmd}: which cache? Give --registry REF (e.g. reg.example/app:cache) or --local DIR`);
}

function when(iso: string | undefined): string {
  return iso ? iso.replace(/\.\d{3}Z$/, 'Z') : '-';
}

function printUsage(u: CacheUsage): void {
  const rows = [
    ['cache', u.where],
    ['format', `version ${u.version}, mode=${u.mode}`],
    ['entries', String(u.records)],
    ['size', formatSize(u.bytes)],
    ['last use', `newest ${when(u.newestUse)}, oldest ${when(u.oldestUse)}`],
    ['orphans', `${u.orphans.count}, ${formatSize(u.orphans.bytes)} (hoist cache prune reclaims these)`],
  ];
  for (const [k, v] of rows) process.stdout.write(`${k!.padEnd(9)} ${v}\n`);
}

/** `hoist cache du`: entries, bytes and last use of a registry or local build cache. */
export async function cacheDuCommand(f: CacheTarget, signal: AbortSignal): Promise<number> {
  const t = target(f, 'du');
  let u: CacheUsage;
  if ('local' in t) u = await localCacheUsage(t.local);
  else {
    const client = makeRegistryClient('quiet');
    try {
      u = await registryCacheUsage(client, t.registry, signal);
    } finally {
      client.close();
    }
  }
  if (f.json) process.stdout.write(JSON.stringify(u, null, 2) + '\n');
  else printUsage(u);
  return 0;
}

export interface CachePruneFlags extends CacheTarget {
  olderThan?: string;
  keep?: string;
}

function pruneBounds(f: CachePruneFlags): Bounds {
  const b: Bounds = {};
  try {
    if (f.olderThan !== undefined) b.ttlMs = parseDuration(f.olderThan, '--older-than');
  } catch (e) {
    if (e instanceof CacheError) throw new UsageError(e.message);
    throw e;
  }
  if (f.keep !== undefined) {
    if (!/^\d+$/.test(f.keep) || Number(f.keep) < 1) throw new UsageError(`--keep must be a whole number of entries, at least 1, not "${f.keep}"`);
    b.maxEntries = Number(f.keep);
  }
  return b;
}

/**
 * `hoist cache prune`: drop entries unused for --older-than (or past the --keep most recently
 * used), then delete what no longer is referenced: replaced artifacts and their blobs in a
 * registry (DELETE through the distribution API), stray blobs in a local cache directory.
 */
export async function cachePruneCommand(f: CachePruneFlags, signal: AbortSignal): Promise<number> {
  const t = target(f, 'prune');
  const b = pruneBounds(f);
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'hoist-cache-prune-'));
  try {
    const store = await ImageStore.open(path.join(tmp, 'store'));
    if ('local' in t) {
      const r = await pruneLocalCache(store, { ...b, dir: t.local });
      report(f, { where: t.local, entries: r.records, dropped: r.dropped, deletedBlobs: r.deleted, bytes: r.bytes });
      return 0;
    }
    const client = makeRegistryClient('quiet');
    try {
      const r = await pruneRegistryCache(client, store, { ...b, ref: t.registry, signal });
      report(f, { where: t.registry, entries: r.records, dropped: r.dropped, deletedManifests: r.reclaimed.manifests, deletedBlobs: r.reclaimed.blobs, bytes: r.reclaimed.bytes });
      return 0;
    } finally {
      client.close();
    }
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}

function report(f: CacheTarget, r: { where: string; entries: number; dropped: number; deletedManifests?: number; deletedBlobs: number; bytes: number }): void {
  if (f.json) {
    process.stdout.write(JSON.stringify(r, null, 2) + '\n');
    return;
  }
  const manifests = r.deletedManifests !== undefined ? `${r.deletedManifests} replaced artifacts and ` : '';
  process.stdout.write(`${r.where}: ${r.entries} entries kept, ${r.dropped} dropped; deleted ${manifests}${r.deletedBlobs} blobs (${formatSize(r.bytes)})\n`);
  if (r.deletedManifests !== undefined && r.deletedBlobs > 0) process.stdout.write(`the registry frees the bytes at its next garbage collection (distribution: registry garbage-collect)\n`);
}
