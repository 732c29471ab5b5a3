import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { BlobStore, type Descriptor, type Digest } from '@hoist/oci';
import { SnapshotMaintenance } from '@hoist/snapshotter';
import { listCacheRecords } from './cache-records.js';
import { checkManifestLayer, layerProblems, verifyBlob, type LayerVerdict } from './fsck-layers.js';
import { pidAlive, pidInName } from './fs-tools.js';
import { readIndexEntries, walkImages, type IndexEntry } from './reachability.js';
import { formatSize } from './size.js';
import type { StorePaths } from './store-paths.js';
import { TEMP_MAX_AGE_MS, listTempFiles } from './temp-files.js';

export interface FsckIssue {
  severity: 'error' | 'warning';
  /** What is wrong. */
  problem: string;
  /** What to do about it. */
  fix: string;
}

export interface FsckReport {
  /** No errors (warnings allowed). */
  ok: boolean;
  images: number;
  /** Blobs read in full and verified (digest and size). */
  blobsVerified: number;
  bytesVerified: number;
  cacheRecords: number;
  /** Blobs no image or cache record uses (not a problem: `hoist prune` reclaims them). */
  unreferenced: { count: number; bytes: number };
  /** Index entries' platforms that were never pulled (not a problem). */
  absentPlatforms: number;
  issues: FsckIssue[];
}

const PRUNE = 'run `hoist prune`';

/**
 * Check a store: the root is private; `oci-layout` and `index.json` parse; every image's
 * manifests, configs and layers exist and verify (full read: digest and size; layers also
 * decompressed, their members checked as extraction would, and matched with the config's
 * diff_ids); no stray temp files; cache records parse and name existing blobs (warnings);
 * snapshot bookkeeping is sound (warnings). Read-only.
 */
export async function fsckStore(paths: StorePaths, opts: { signal?: AbortSignal; now?: number } = {}): Promise<FsckReport> {
  const issues: FsckIssue[] = [];
  const err = (problem: string, fix: string): void => void issues.push({ severity: 'error', problem, fix });
  const warn = (problem: string, fix: string): void => void issues.push({ severity: 'warning', problem, fix });
  const blobs = new BlobStore(paths.oci);
  const report: FsckReport = { ok: true, images: 0, blobsVerified: 0, bytesVerified: 0, cacheRecords: 0, unreferenced: { count: 0, bytes: 0 }, absentPlatforms: 0, issues };

  const rootMode = ((await fsp.stat(paths.root).catch(() => undefined))?.mode ?? 0) & 0o7777;
  if ((rootMode & 0o077) !== 0) {
    err(`${paths.root} is open to other users (mode ${rootMode.toString(8).padStart(4, '0')}): they can reach unpacked images, setuid files and device nodes included`, `run \`chmod 700 ${paths.root}\` (any hoist command that opens the store, e.g. \`hoist images\`, does it)`);
  }
  const layout = await fsp.readFile(path.join(paths.oci, 'oci-layout'), 'utf8').catch(() => undefined);
  if (layout === undefined) err(`${paths.oci}/oci-layout is missing`, `write {"imageLayoutVersion":"1.0.0"} into it (any hoist command that opens the store does)`);
  else {
    try {
      if (typeof (JSON.parse(layout) as { imageLayoutVersion?: unknown }).imageLayoutVersion !== 'string') throw new Error('no imageLayoutVersion');
    } catch {
      err(`${paths.oci}/oci-layout is not valid`, `write {"imageLayoutVersion":"1.0.0"} into it`);
    }
  }

  let entries: IndexEntry[] = [];
  try {
    entries = await readIndexEntries(paths.oci);
  } catch (e) {
    err((e as Error).message, 'restore index.json from a backup, or delete it and re-tag (`hoist tag`) or re-pull the images; do not prune before');
  }
  report.images = entries.length;
  const reach = await walkImages(blobs, entries);
  report.absentPlatforms = reach.absentChildren;
  const fixFor = (ref?: string): string =>
    ref ? `remove the image (\`hoist rm ${ref}\`), run \`hoist prune\`, then pull or rebuild it` : 'remove the entry from index.json, then run `hoist prune`';
  for (const p of reach.problems) err(`image ${p.ref ?? '(untagged)'}: ${p.what} ${p.digest}: ${p.message}`, fixFor(p.ref));

  // full verification of every blob of every image (each once); layers also decompressed and
  // checked as extraction would, against the diff_ids of their config
  const configs = new Map<Digest, string | undefined>();
  const layers = new Map<Digest, LayerVerdict>();
  const counted = (d: Descriptor): void => {
    report.blobsVerified++;
    report.bytesVerified += d.size;
  };
  for (const m of reach.manifests) {
    const image = `image ${m.ref ?? m.descriptor.digest}`;
    if (!configs.has(m.config.digest)) {
      configs.set(m.config.digest, await verifyBlob(blobs, m.config, opts.signal));
      if (!configs.get(m.config.digest)) counted(m.config);
    }
    const badConfig = configs.get(m.config.digest);
    if (badConfig) err(`${image}: config ${m.config.digest} ${badConfig}`, fixFor(m.ref));
    for (const l of m.layers) {
      if (layers.has(l.digest)) continue;
      const v = await checkManifestLayer(blobs, l, opts.signal);
      layers.set(l.digest, v);
      if ('diffId' in v) counted(l);
    }
    for (const p of layerProblems(m.layers, m.diffIds, layers)) err(`${image}: ${p}`, fixFor(m.ref));
    counted(m.descriptor);
  }

  // cache records
  const recordBlobs = new Set<Digest>();
  const records = await listCacheRecords(paths.cacheKeys);
  report.cacheRecords = records.length;
  let invalid = 0;
  let orphaned = 0;
  for (const r of records) {
    if (!r.record) {
      invalid++;
      continue;
    }
    const l = r.record.layer;
    if (!l) continue;
    recordBlobs.add(l.descriptor.digest);
    const st = await blobs.stat(l.descriptor.digest);
    if (!st || st.size !== l.descriptor.size) orphaned++;
  }
  if (invalid > 0) warn(`${invalid} build cache record(s) in ${paths.cacheKeys} are unreadable`, `${PRUNE} (it removes them)`);
  if (orphaned > 0) warn(`${orphaned} build cache record(s) name a layer blob that is missing`, `${PRUNE} (it removes them; the steps run again on the next build)`);

  // temp leftovers
  const maxAge = TEMP_MAX_AGE_MS;
  const stray = (await listTempFiles(paths, opts.now)).filter((t) => t.ageMs > maxAge);
  if (stray.length > 0) {
    const bytes = stray.reduce((a, t) => a + t.size, 0);
    err(`${stray.length} stray temp file(s) older than an hour (${formatSize(bytes)}), e.g. ${stray[0]!.path}`, `${PRUNE} (it removes them)`);
  }

  // snapshots
  const snapshotStore = new SnapshotMaintenance(paths.snapshots);
  const incomplete = (await snapshotStore.list()).filter((s) => !s.complete);
  if (incomplete.length > 0) warn(`${incomplete.length} snapshot dir(s) without layer.json, e.g. ${incomplete[0]!.dir}`, `${PRUNE} (it removes them; layers unpack again when needed)`);
  const dangling = await snapshotStore.danglingLinks();
  if (dangling.length > 0) warn(`${dangling.length} snapshot link(s) point at missing snapshots, e.g. ${dangling[0]}`, `${PRUNE} (it removes them)`);
  let stale = 0;
  for (const w of await snapshotStore.work()) {
    const pid = pidInName(w.name);
    if (pid !== undefined && !pidAlive(pid)) stale++;
  }
  if (stale > 0) warn(`${stale} mount or work dir(s) of crashed processes under ${paths.snapshots}`, `${PRUNE} (it unmounts and removes them)`);

  // what prune would reclaim
  for await (const d of blobs.list()) {
    if (reach.blobs.has(d) || recordBlobs.has(d)) continue;
    report.unreferenced.count++;
    report.unreferenced.bytes += (await blobs.stat(d))?.size ?? 0;
  }
  report.ok = !issues.some((i) => i.severity === 'error');
  return report;
}
