/** pruneStore / fsckStore / diskUsage on synthetic stores: every rule on its own. */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { MediaType, canonicalJson, chainIds, sha256, type Descriptor, type Digest, type ImageStore } from '@hoist/oci';
import { Snapshotter } from '@hoist/snapshotter';
import { ExportError, diskUsage, fsckStore, pruneStore, storePaths, type StorePaths } from '@hoist/exporter';
import { hoistLayer, makeImage, newStore } from './helpers.js';

type Layer = { descriptor: Descriptor; diffId: Digest };

async function writeRecord(paths: StorePaths, key: string, created: string, layer?: Layer): Promise<string> {
  const file = path.join(paths.cacheKeys, key.slice(0, 2), `${key}.json`);
  await fsp.mkdir(path.dirname(file), { recursive: true });
  await fsp.writeFile(file, JSON.stringify({ key, created, ...(layer ? { layer } : {}), inputs: {} }));
  return file;
}
const key = (n: number): string => sha256(`key-${n}`).slice(7);
const exists = (p: string): Promise<boolean> => fsp.access(p).then(() => true, () => false);

describe('store tools on synthetic stores', () => {
  let root: string;
  let store: ImageStore;
  let paths: StorePaths;
  let base: Layer;
  let app: Layer;
  let cached: Layer[];
  let image: Descriptor;

  beforeEach(async () => {
    ({ root, store } = await newStore());
    paths = storePaths(root);
    base = await hoistLayer(store, { 'etc/os': 'test\n' });
    app = await hoistLayer(store, { 'app/x': 'x'.repeat(50_000) });
    image = await makeImage(store, [base, app], { tags: ['app:1'] });
    // three cached layers of different ages and sizes, not in any image
    cached = [];
    for (let i = 0; i < 3; i++) cached.push(await hoistLayer(store, { [`c${i}`]: `${i}`.repeat(100_000 * (i + 1)) }));
    await writeRecord(paths, key(1), '2020-01-03T00:00:00Z', cached[0]);
    await writeRecord(paths, key(2), '2020-01-01T00:00:00Z', cached[1]);
    await writeRecord(paths, key(3), '2020-01-02T00:00:00Z', cached[2]);
    await writeRecord(paths, key(4), '2020-01-04T00:00:00Z', app); // a record for a layer an image uses
    await writeRecord(paths, key(5), '2020-01-05T00:00:00Z'); // a step that changed nothing
  });
  afterEach(async () => {
    await fsp.rm(root, { recursive: true, force: true });
  });

  it('a fresh store is consistent and prune has nothing to do', async () => {
    const f = await fsckStore(paths);
    expect(f.issues).toEqual([]);
    expect(f.ok).toBe(true);
    expect(f.images).toBe(1);
    expect(f.blobsVerified).toBe(4); // config, 2 layers, manifest
    const r = await pruneStore(paths);
    expect(r.reclaimed).toBe(0);
    expect(r.cacheRecords).toEqual({ removed: 0, kept: 5, invalid: 0, orphaned: 0 });
  });

  it('unreachable blobs go; torn and orphaned records go first; --dry-run deletes nothing', async () => {
    const junk = await store.blobs.putBytes(Buffer.from('{"junk":1}'), MediaType.OciConfig);
    const torn = path.join(paths.cacheKeys, 'ab', `${'ab'.repeat(32)}.json`);
    await fsp.mkdir(path.dirname(torn), { recursive: true });
    await fsp.writeFile(torn, '{"key": "ab');
    await store.blobs.delete(cached[0]!.descriptor.digest); // record 1 now names a missing blob
    const f = await fsckStore(paths);
    expect(f.ok).toBe(true); // warnings only
    expect(f.issues.map((i) => i.severity)).toEqual(['warning', 'warning']);
    expect(f.issues[0]!.problem).toContain('1 build cache record(s)');
    expect(f.issues[1]!.problem).toContain('name a layer blob that is missing');
    expect(f.unreferenced).toEqual({ count: 1, bytes: junk.size });

    const dry = await pruneStore(paths, { dryRun: true });
    expect(dry.blobs.count).toBe(1);
    expect(await store.blobs.has(junk.digest)).toBe(true);
    expect(await exists(torn)).toBe(true);

    const r = await pruneStore(paths);
    expect(r.cacheRecords).toEqual({ removed: 2, kept: 4, invalid: 1, orphaned: 1 });
    expect(r.blobs).toMatchObject({ count: 1, bytes: junk.size });
    expect(await store.blobs.has(junk.digest)).toBe(false);
    expect(await exists(torn)).toBe(false);
    expect((await fsckStore(paths)).issues).toEqual([]);
  });

  it('--keep-storage drops records oldest first (by created) until blobs + snapshots fit', async () => {
    const size = async (d: Descriptor): Promise<number> => (await store.blobs.stat(d.digest))!.size;
    const everything = (await pruneStore(paths, { keepStorage: Number.MAX_SAFE_INTEGER, dryRun: true })).storage!;
    const c = await Promise.all(cached.map((l) => size(l.descriptor)));
    // room for the image and exactly the two newest cached layers (record 1: c0, record 3: c2)
    const limit = everything - c[1]! + 1;
    const r = await pruneStore(paths, { keepStorage: limit });
    expect(r.cacheRecords.removed).toBe(1);
    expect(await store.blobs.has(cached[1]!.descriptor.digest)).toBe(false); // record 2, the oldest
    expect(await store.blobs.has(cached[0]!.descriptor.digest)).toBe(true);
    expect(await store.blobs.has(cached[2]!.descriptor.digest)).toBe(true);
    expect(r.storage).toBeLessThanOrEqual(limit);
    // a limit below what images take: every record goes, images stay, and it says so
    const r2 = await pruneStore(paths, { keepStorage: 1 });
    expect(r2.cacheRecords.kept).toBe(0);
    expect(r2.notes.join()).toContain('tagged images');
    expect((await store.list()).map((i) => i.descriptor.digest)).toEqual([image.digest]);
    expect(await store.blobs.has(app.descriptor.digest)).toBe(true); // the image's, though record 4 went
  });

  it('snapshots and flattened chains nothing uses go; the images\' stay; links are cleaned', async () => {
    const snap = await Snapshotter.open({ root: paths.snapshots, blobs: store.blobs, driver: 'overlay' });
    for (const l of [base, app, ...cached]) await snap.ensureLayer(l);
    const dir = (l: Layer): string => path.join(paths.snapshots, 'snapshots', l.diffId.slice(7));
    // a copy-driver chain for the image and one for something gone
    const keepChain = path.join(paths.snapshots, 'chains', chainIds([base.diffId, app.diffId]).at(-1)!.slice(7));
    const goneChain = path.join(paths.snapshots, 'chains', sha256('gone').slice(7));
    for (const c of [keepChain, goneChain]) await fsp.mkdir(path.join(c, 'etc'), { recursive: true });
    const r = await pruneStore(paths, { all: true });
    expect(r.snapshots.count).toBe(3);
    expect(r.snapshots.bytes).toBeGreaterThan(600_000);
    expect(r.chains.count).toBe(1);
    expect(r.links).toBe(3);
    for (const l of cached) expect(await exists(dir(l))).toBe(false);
    for (const l of [base, app]) expect(await exists(path.join(dir(l), 'diff'))).toBe(true);
    expect(await exists(keepChain)).toBe(true);
    expect(await exists(goneChain)).toBe(false);
    expect((await fsp.readdir(path.join(paths.snapshots, 'l'))).length).toBe(2);
    // the kept snapshots still mount
    const v = await snap.view([base.diffId, app.diffId]);
    expect(await fsp.readFile(path.join(v.root, 'etc/os'), 'utf8')).toBe('test\n');
    await v.release();
    expect((await fsckStore(paths)).issues).toEqual([]);
  });

  it('refuses to prune a store whose roots cannot be read; fsck says what to do', async () => {
    const idx = path.join(paths.oci, 'index.json');
    const good = await fsp.readFile(idx);
    await fsp.writeFile(idx, '{"schemaVersion": 2, "manif');
    await expect(pruneStore(paths)).rejects.toMatchObject({ code: 'STORE_CORRUPT' });
    const f = await fsckStore(paths);
    expect(f.ok).toBe(false);
    expect(f.issues[0]!.fix).toContain('do not prune before');
    await fsp.writeFile(idx, good);
    await store.blobs.delete(image.digest); // a tagged manifest is gone: its blobs can't be told from garbage
    const err = await pruneStore(paths).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExportError);
    expect((err as ExportError).message).toContain('docker.io/library/app:1');
    expect(await store.blobs.has(app.descriptor.digest)).toBe(true);
  });

  it('an index whose other platforms were never pulled is fine; its present manifest is kept', async () => {
    const m = await store.blobs.stat(image.digest);
    const index = {
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: [
        { ...image, size: m!.size, platform: { os: 'linux', architecture: 'amd64' } },
        { mediaType: MediaType.OciManifest, digest: sha256('arm64 manifest'), size: 100, platform: { os: 'linux', architecture: 'arm64' } },
      ],
    };
    const desc = await store.blobs.putBytes(canonicalJson(index), MediaType.OciIndex);
    await store.untag('app:1');
    await store.tag('multi:1', desc);
    const f = await fsckStore(paths);
    expect(f.ok).toBe(true);
    expect(f.absentPlatforms).toBe(1);
    const r = await pruneStore(paths);
    expect(r.blobs.count).toBe(0);
    expect(await store.blobs.has(image.digest)).toBe(true);
  });

  it('fsck: a layer of the wrong size; diskUsage adds up', async () => {
    const u = await diskUsage(paths);
    expect(u.images).toMatchObject({ count: 1, blobs: 4 });
    expect(u.buildCache.records).toBe(5);
    expect(u.buildCache.blobs).toBe(3);
    expect(u.buildCache.sharedBytes).toBe((await store.blobs.stat(app.descriptor.digest))!.size);
    expect(u.total).toBe(u.images.bytes + u.buildCache.bytes + u.unreferenced.bytes + u.snapshots.bytes + u.cacheMounts.bytes + u.temp.bytes);
    await fsp.appendFile(store.blobs.path(base.descriptor.digest), 'x');
    const f = await fsckStore(paths);
    expect(f.ok).toBe(false);
    expect(f.issues.map((i) => i.problem)).toEqual([expect.stringMatching(new RegExp(`layer ${base.descriptor.digest} is \\d+ bytes, its descriptor says`))]);
  });
});
