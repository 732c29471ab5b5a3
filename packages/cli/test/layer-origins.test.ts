/**
 * The writers take any image, wherever its layers are (#14): one image whose three layers are
 * in the local store, in a registry (lazy) and in an imported cache directory is written as an
 * OCI layout (skopeo copies it, umoci unpacks all three files), a docker-archive (skopeo reads
 * it) and pushed (pulled back with the same digest) — no blob is brought into the store first.
 */
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { ImageStore, MediaType, appendLayer, emptyImage, sha256, writeImage, type Descriptor, type Digest, type Image, type Layer } from '@hoist/oci';
import { encodeHeader } from '@hoist/snapshotter';
import { RegistryClient } from '@hoist/registry-client';
import { LocalCacheSource, exportCacheToDir } from '@hoist/cache';
import { loadExportImage, saveImages, saveOciDir } from '@hoist/exporter';
import { startRegistry, type RunningRegistry } from '@hoist/testkit';

const run = promisify(execFile);

function tarOf(name: string, text: string): Buffer {
  const data = Buffer.from(text);
  const h = encodeHeader({ name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: 0 });
  return Buffer.concat([h, data, Buffer.alloc((512 - (data.length % 512)) % 512), Buffer.alloc(1024)]);
}

/** A gzip layer holding one file, stored in `store`. */
async function layerIn(store: ImageStore, name: string): Promise<{ desc: Descriptor; diffId: Digest }> {
  const tar = tarOf(name, `${name} content\n`);
  return { desc: await store.blobs.putBytes(gzipSync(tar), MediaType.OciLayerGzip), diffId: sha256(tar) };
}

let work: string;
let reg: RunningRegistry;
let client: RegistryClient;
let store: ImageStore;
let descriptor: Descriptor;
let remote: Layer[];
let blobs: Digest[];

beforeAll(async () => {
  work = await fsp.mkdtemp(path.join(os.tmpdir(), 'hoist-layer-origins-'));
  reg = await startRegistry();
  client = new RegistryClient();
  store = await ImageStore.open(path.join(work, 'store'));
  const local = await layerIn(store, 'from-store.txt');
  // a base layer only in a registry
  const elsewhere = await ImageStore.open(path.join(work, 'elsewhere'));
  const base = await layerIn(elsewhere, 'from-registry.txt');
  await client.pushBlob(elsewhere, base.desc, `${reg.host}/lib/base:1`);
  // a layer only in an exported cache directory
  const cached = await layerIn(elsewhere, 'from-cache.txt');
  const cacheDir = path.join(work, 'cache');
  await exportCacheToDir(elsewhere, { records: [{ key: sha256('k').slice(7), created: '2026-01-01T00:00:00Z', layer: { descriptor: cached.desc, diffId: cached.diffId } }], dir: cacheDir, mode: 'max' });
  const cache = (await LocalCacheSource.load(store, cacheDir))!;

  let img: Image = emptyImage({ os: 'linux', architecture: 'amd64' });
  for (const l of [base, cached, local]) img = appendLayer(img, l.desc, l.diffId, { created_by: 'test' });
  descriptor = (await writeImage(store.blobs, img)).descriptor;
  remote = [client.layer(`${reg.host}/lib/base:1`, base.desc, base.diffId), cache.layerFor(cached.desc, cached.diffId)!];
  blobs = [base.desc.digest, cached.desc.digest];
  for (const d of blobs) expect(await store.blobs.has(d)).toBe(false);
});

afterAll(async () => {
  client.close();
  await reg.stop();
  await fsp.rm(work, { recursive: true, force: true });
});

async function exportImage(): Promise<Awaited<ReturnType<typeof loadExportImage>>> {
  return loadExportImage(store, descriptor, { refs: ['docker.io/library/three:1'], layers: remote });
}

test('the layers say where they are: store, registry, cache', async () => {
  const img = await exportImage();
  expect(img.primary.layers.map((l) => l.origin.kind)).toEqual(['registry', 'cache', 'store']);
});

test('an OCI layout of the mixed image: skopeo copies it and umoci unpacks the files of all three layers', async () => {
  const dir = path.join(work, 'layout');
  await saveOciDir([await exportImage()], dir);
  const copy = path.join(work, 'copy');
  await run('skopeo', ['copy', `oci:${dir}:docker.io/library/three:1`, `oci:${copy}:three`]);
  const raw = (await run('skopeo', ['inspect', '--raw', `oci:${copy}:three`])).stdout;
  expect(sha256(raw)).toBe(descriptor.digest);
  const bundle = path.join(work, 'bundle');
  await run('umoci', ['unpack', '--image', `${copy}:three`, bundle]);
  for (const f of ['from-registry.txt', 'from-cache.txt', 'from-store.txt']) {
    expect(await fsp.readFile(path.join(bundle, 'rootfs', f), 'utf8')).toBe(`${f} content\n`);
  }
  for (const d of blobs) expect(await store.blobs.has(d)).toBe(false);
});

test('a docker-archive of the mixed image: skopeo reads the same layers (uncompressed, diff_ids checked)', async () => {
  const file = path.join(work, 'three.tar');
  await saveImages([await exportImage()], { format: 'docker', dest: file });
  const cfg = JSON.parse((await run('skopeo', ['inspect', '--config', `docker-archive:${file}`])).stdout) as { rootfs: { diff_ids: string[] } };
  const mine = JSON.parse((await store.blobs.getBytes((await exportImage()).primary.manifest.value.config)).toString()) as { rootfs: { diff_ids: string[] } };
  expect(cfg.rootfs.diff_ids).toEqual(mine.rootfs.diff_ids);
});

test('a push of the mixed image uploads every blob from where it is; a pull gets the same digest', async () => {
  const ref = `${reg.host}/apps/three:1`;
  const r = await client.push(store, descriptor, ref, { layers: remote });
  // the registry layer is mounted from its repository, the cache and store layers are uploaded
  expect(blobs.map((d) => r.blobs[d])).toEqual(['mounted', 'uploaded']);
  const dst = await ImageStore.open(path.join(work, 'pulled'));
  expect((await new RegistryClient().pull(ref, dst)).digest).toBe(descriptor.digest);
  for (const d of blobs) expect(await store.blobs.has(d)).toBe(false);
});
