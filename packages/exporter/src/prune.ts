import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { BlobStore, type Digest } from '@hoist/oci';
import { SnapshotMaintenance, Snapshotter, type ChainEntry, type SnapshotEntry } from '@hoist/snapshotter';
import { byAge, listCacheRecords, type CacheRecordFile } from './cache-records.js';
import { ExportError, throwIfAborted } from './errors.js';
import { pidAlive, pidInName, readdirOrEmpty, treeSize } from './fs-tools.js';
import { readIndexEntries, walkImages } from './reachability.js';
import { formatSize } from './size.js';
import { storeActivity } from './snapshots.js';
import type { StorePaths } from './store-paths.js';
import { TEMP_MAX_AGE_MS, listTempFiles } from './temp-files.js';

export interface PruneOptions {
  /** Also drop every build cache record and the cache mounts. */
  all?: boolean;
  /** Drop build cache records, oldest first, until blobs + snapshots take less than this (bytes). */
  keepStorage?: number;
  /** Report what would go, delete nothing. */
  dryRun?: boolean;
  /** Temp leftovers older than this go (default 1 hour). */
  tempMaxAgeMs?: number;
  now?: number;
  signal?: AbortSignal;
}

export interface Freed {
  count: number;
  bytes: number;
}

export interface PruneReport {
  dryRun: boolean;
  cacheRecords: { removed: number; kept: number; invalid: number; orphaned: number };
  blobs: Freed & { kept: number };
  snapshots: Freed & { kept: number };
  chains: Freed;
  links: number;
  temp: Freed;
  cacheMounts: Freed;
  staleMounts: { unmounted: number; removed: number };
  reclaimed: number;
  /** Blobs + snapshots left, when `keepStorage` was given (it is what that limit measures). */
  storage?: number;
  notes: string[];
}

const freed = (): Freed => ({ count: 0, bytes: 0 });

/**
 * Garbage-collect a store. Roots: every image in `index.json` (indexes -> manifests ->
 * config + layers) and the build cache records kept. Goes, in this order, so that no record
 * ever names a missing blob: cache records (invalid, or whose blob is gone, or dropped by
 * `all` / `keepStorage`), unreachable blobs, snapshots and flattened chains no kept image or
 * record uses, dangling snapshot links, temp leftovers older than an hour, cache mounts (`all`),
 * and stale mounts of crashed processes. `index.json` is never changed.
 *
 * Refuses (STORE_BUSY) while another process works on the store, and (STORE_CORRUPT) when an
 * image's manifest or config cannot be read — its blobs could not be told from garbage.
 */
export async function pruneStore(paths: StorePaths, opts: PruneOptions = {}): Promise<PruneReport> {
  const dry = !!opts.dryRun;
  const busy = await storeActivity(paths);
  if (busy.length > 0) {
    throw new ExportError('STORE_BUSY', `the store is in use:\n  ${busy.join('\n  ')}`, { hint: 'wait for those processes to finish, then prune again' });
  }
  const blobs = new BlobStore(paths.oci);
  const reach = await walkImages(blobs, await readIndexEntries(paths.oci));
  if (reach.problems.length > 0) {
    const lines = reach.problems.map((p) => `${p.ref ?? '(untagged)'}: ${p.what} ${p.digest}: ${p.message}`);
    throw new ExportError('STORE_CORRUPT', `cannot tell garbage from images, some are unreadable:\n  ${lines.join('\n  ')}`, {
      hint: 'run `hoist fsck`; remove the broken images with `hoist rm REF` (then pull or rebuild them) and prune again',
    });
  }
  const report: PruneReport = {
    dryRun: dry,
    cacheRecords: { removed: 0, kept: 0, invalid: 0, orphaned: 0 },
    blobs: { ...freed(), kept: 0 },
    snapshots: { ...freed(), kept: 0 },
    chains: freed(),
    links: 0,
    temp: freed(),
    cacheMounts: freed(),
    staleMounts: { unmounted: 0, removed: 0 },
    reclaimed: 0,
    notes: [],
  };

  // 1. which cache records stay
  const drop: CacheRecordFile[] = [];
  let keep: CacheRecordFile[] = [];
  for (const r of await listCacheRecords(paths.cacheKeys)) {
    if (!r.record) {
      report.cacheRecords.invalid++;
      drop.push(r);
    } else if (r.record.layer && !(await blobs.has(r.record.layer.descriptor.digest))) {
      report.cacheRecords.orphaned++;
      drop.push(r);
    } else if (opts.all) drop.push(r);
    else keep.push(r);
  }
  const blobSizes = new Map<Digest, number>();
  for await (const d of blobs.list()) {
    const st = await blobs.stat(d);
    if (st) blobSizes.set(d, st.size);
  }
  const snapshotStore = new SnapshotMaintenance(paths.snapshots);
  const snaps = await snapshotStore.list();
  const chains = await snapshotStore.chains();
  if (opts.keepStorage !== undefined) {
    const r = await applyKeepStorage(opts.keepStorage, keep, reach, blobSizes, snaps, chains);
    keep = r.keep;
    drop.push(...r.dropped);
    report.storage = r.total;
    if (r.total > opts.keepStorage) {
      report.notes.push(`the store still takes ${formatSize(r.total)}, over ${formatSize(opts.keepStorage)}: that is what tagged images use (remove some with \`hoist rm\`)`);
    }
  }
  const keepBlobs = new Set(reach.blobs);
  const keepDiffs = new Set(reach.diffIds);
  for (const r of keep) {
    if (!r.record?.layer) continue;
    keepBlobs.add(r.record.layer.descriptor.digest);
    keepDiffs.add(r.record.layer.diffId);
  }
  report.cacheRecords.kept = keep.length;

  // 2. delete, records first
  for (const r of drop) {
    throwIfAborted(opts.signal);
    if (!dry) await fsp.rm(r.file, { force: true });
    report.cacheRecords.removed++;
  }
  for (const [d, size] of blobSizes) {
    throwIfAborted(opts.signal);
    if (keepBlobs.has(d)) {
      report.blobs.kept++;
      continue;
    }
    if (!dry) await blobs.delete(d);
    report.blobs.count++;
    report.blobs.bytes += size;
  }
  for (const s of snaps) {
    throwIfAborted(opts.signal);
    if (s.complete && keepDiffs.has(s.diffId)) {
      report.snapshots.kept++;
      continue;
    }
    report.snapshots.count++;
    report.snapshots.bytes += dry ? await treeSize(s.dir) : await snapshotStore.remove(s);
  }
  for (const c of chains) {
    if (reach.chainIds.has(c.chainId)) continue;
    report.chains.count++;
    report.chains.bytes += dry ? await treeSize(c.dir) : await snapshotStore.remove(c);
  }
  if (!dry) report.links = await snapshotStore.removeDanglingLinks();
  const maxAge = opts.tempMaxAgeMs ?? TEMP_MAX_AGE_MS;
  for (const t of await listTempFiles(paths, opts.now)) {
    if (t.ageMs <= maxAge) continue;
    if (!dry) await fsp.rm(t.path, { recursive: true, force: true });
    report.temp.count++;
    report.temp.bytes += t.size;
  }
  if (opts.all) {
    for (const n of await readdirOrEmpty(paths.cacheMounts)) {
      const p = path.join(paths.cacheMounts, n);
      report.cacheMounts.count++;
      report.cacheMounts.bytes += await treeSize(p);
      if (!dry) await fsp.rm(p, { recursive: true, force: true });
    }
  }
  if (!dry) report.staleMounts = await cleanupStaleMounts(paths, blobs);
  report.reclaimed = report.blobs.bytes + report.snapshots.bytes + report.chains.bytes + report.temp.bytes + report.cacheMounts.bytes;
  return report;
}

/** Mounts and temp dirs of crashed processes, removed by the snapshotter's own cleanup. */
async function cleanupStaleMounts(paths: StorePaths, blobs: BlobStore): Promise<{ unmounted: number; removed: number }> {
  const exists = await fsp.stat(paths.snapshots).then((s) => s.isDirectory(), () => false);
  if (!exists) return { unmounted: 0, removed: 0 };
  const before = (await new SnapshotMaintenance(paths.snapshots).work()).filter((w) => {
    const pid = pidInName(w.name);
    return pid !== undefined && !pidAlive(pid);
  }).length;
  if (before === 0) return { unmounted: 0, removed: 0 };
  // open() runs cleanupStale (the 'copy' driver skips the overlay probe: nothing is mounted here)
  const snap = await Snapshotter.open({ root: paths.snapshots, blobs, driver: 'copy' });
  const again = await snap.cleanupStale();
  return { unmounted: again.unmounted, removed: before };
}

/**
 * Choose which cache records survive `--keep-storage`: drop the oldest until the blobs and
 * snapshots that stay (those of images, which never go, plus those of the remaining records)
 * take at most `limit` bytes.
 */
async function applyKeepStorage(
  limit: number,
  records: CacheRecordFile[],
  reach: { blobs: Set<Digest>; diffIds: Set<Digest>; chainIds: Set<Digest> },
  blobSizes: Map<Digest, number>,
  snaps: SnapshotEntry[],
  chains: ChainEntry[],
): Promise<{ keep: CacheRecordFile[]; dropped: CacheRecordFile[]; total: number }> {
  const snapSize = new Map<Digest, number>();
  for (const s of snaps) if (s.complete) snapSize.set(s.diffId, await treeSize(s.dir));
  const blobRefs = new Map<Digest, number>();
  const diffRefs = new Map<Digest, number>();
  const inc = (m: Map<Digest, number>, k: Digest, by: number): number => {
    const v = (m.get(k) ?? 0) + by;
    m.set(k, v);
    return v;
  };
  for (const r of records) {
    if (!r.record?.layer) continue;
    inc(blobRefs, r.record.layer.descriptor.digest, 1);
    inc(diffRefs, r.record.layer.diffId, 1);
  }
  let total = 0;
  for (const [d, size] of blobSizes) if (reach.blobs.has(d) || blobRefs.has(d)) total += size;
  for (const [d, size] of snapSize) if (reach.diffIds.has(d) || diffRefs.has(d)) total += size;
  for (const c of chains) if (reach.chainIds.has(c.chainId)) total += await treeSize(c.dir);
  const sorted = [...records].sort(byAge);
  const dropped: CacheRecordFile[] = [];
  while (total > limit && sorted.length > 0) {
    const r = sorted.shift()!;
    dropped.push(r);
    const layer = r.record?.layer;
    if (!layer) continue;
    if (inc(blobRefs, layer.descriptor.digest, -1) === 0 && !reach.blobs.has(layer.descriptor.digest)) total -= blobSizes.get(layer.descriptor.digest) ?? 0;
    if (inc(diffRefs, layer.diffId, -1) === 0 && !reach.diffIds.has(layer.diffId)) total -= snapSize.get(layer.diffId) ?? 0;
  }
  return { keep: sorted, dropped, total };
}
