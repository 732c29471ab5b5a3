import * as path from 'node:path';
import { BlobStore, type Digest } from '@hoist/oci';
import { SnapshotMaintenance } from '@hoist/snapshotter';
import { listCacheRecords } from './cache-records.js';
import { readdirOrEmpty, treeSize } from './fs-tools.js';
import { readIndexEntries, walkImages } from './reachability.js';
import type { StorePaths } from './store-paths.js';
import { listTempFiles } from './temp-files.js';

export interface DiskUsage {
  /** Tagged images: their distinct blobs (manifests, configs, layers). */
  images: { count: number; blobs: number; bytes: number };
  /** Build cache: the records, and the layer blobs only they hold (`sharedBytes`: blobs images use too). */
  buildCache: { records: number; blobs: number; bytes: number; sharedBytes: number };
  /** Blobs nothing uses: what `hoist prune` reclaims. */
  unreferenced: { blobs: number; bytes: number };
  /** Unpacked layers (and the copy driver's flattened trees). */
  snapshots: { count: number; bytes: number };
  /** `RUN --mount=type=cache` directories. */
  cacheMounts: { count: number; bytes: number };
  /** Temp files of the store and the builder's scratch space. */
  temp: { count: number; bytes: number };
  total: number;
}

/** Sizes by category (apparent sizes; hard links counted once per tree). */
export async function diskUsage(paths: StorePaths): Promise<DiskUsage> {
  const blobs = new BlobStore(paths.oci);
  const entries = await readIndexEntries(paths.oci);
  const reach = await walkImages(blobs, entries);
  const sizes = new Map<Digest, number>();
  for await (const d of blobs.list()) sizes.set(d, (await blobs.stat(d))?.size ?? 0);

  const images = { count: entries.length, blobs: 0, bytes: 0 };
  for (const d of reach.blobs) {
    const s = sizes.get(d);
    if (s === undefined) continue;
    images.blobs++;
    images.bytes += s;
  }
  const records = await listCacheRecords(paths.cacheKeys);
  const buildCache = { records: records.length, blobs: 0, bytes: records.reduce((a, r) => a + r.size, 0), sharedBytes: 0 };
  const cacheBlobs = new Set<Digest>();
  for (const r of records) {
    const d = r.record?.layer?.descriptor.digest;
    if (!d || cacheBlobs.has(d) || !sizes.has(d)) continue;
    cacheBlobs.add(d);
    if (reach.blobs.has(d)) buildCache.sharedBytes += sizes.get(d)!;
    else {
      buildCache.blobs++;
      buildCache.bytes += sizes.get(d)!;
    }
  }
  const unreferenced = { blobs: 0, bytes: 0 };
  for (const [d, s] of sizes) {
    if (reach.blobs.has(d) || cacheBlobs.has(d)) continue;
    unreferenced.blobs++;
    unreferenced.bytes += s;
  }
  const snapshotStore = new SnapshotMaintenance(paths.snapshots);
  const snapshots = await snapshotStore.usage();
  const mounts = await readdirOrEmpty(paths.cacheMounts);
  const cacheMounts = { count: mounts.length, bytes: await treeSize(paths.cacheMounts) };
  // tmp/ is counted whole below
  const tempFiles = (await listTempFiles(paths)).filter((t) => !t.path.startsWith(paths.tmp + path.sep));
  const scratch = await readdirOrEmpty(paths.tmp);
  const temp = {
    count: tempFiles.length + scratch.length,
    bytes: tempFiles.reduce((a, t) => a + t.size, 0) + (await treeSize(paths.tmp)) + (await snapshotStore.tempBytes()),
  };
  const total = images.bytes + buildCache.bytes + unreferenced.bytes + snapshots.bytes + cacheMounts.bytes + temp.bytes;
  return { images, buildCache, unreferenced, snapshots, cacheMounts, temp, total };
}
