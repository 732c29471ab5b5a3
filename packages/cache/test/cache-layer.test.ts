/**
 * Layers of an imported cache (#14): a cache provides its blobs as lazy layers — nothing is
 * read or downloaded until a layer is opened or fetched, and what is read is verified.
 */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { ImageStore, MediaType, sha256 } from '@hoist/oci';
import { RegistryClient } from '@hoist/registry-client';
import { startProxy, startRegistry } from '@hoist/testkit';
import { LocalCacheSource, RegistryCacheSource, exportCacheToDir, exportCacheToRegistry, type CacheEntry } from '@hoist/cache';

async function readAll(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

let dir: string;
beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hoist-cache-layer-'));
});
afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

/** A store with one cache record whose layer is a real gzip layer. */
async function storeWithRecord(): Promise<{ store: ImageStore; record: CacheEntry; tar: Buffer }> {
  const store = await ImageStore.open(path.join(dir, 'store'));
  const tar = Buffer.from('cached layer bytes\n'.repeat(500));
  const descriptor = await store.blobs.putBytes(gzipSync(tar), MediaType.OciLayerGzip);
  return { store, tar, record: { key: sha256('step').slice(7), created: '2026-01-01T00:00:00Z', layer: { descriptor, diffId: sha256(tar) } } };
}

test('a local cache gives its blobs as layers: verified on open, copied by fetchInto, none for a blob it lacks', async () => {
  const { store, record, tar } = await storeWithRecord();
  const out = path.join(dir, 'cache');
  await exportCacheToDir(store, { records: [record], dir: out, mode: 'max' });
  const fresh = await ImageStore.open(path.join(dir, 'fresh'));
  const src = (await LocalCacheSource.load(fresh, out))!;
  const { descriptor, diffId } = record.layer!;
  const layer = src.layerFor(descriptor, diffId)!;
  expect(layer.origin).toEqual({ kind: 'cache', where: out });
  expect(await fresh.blobs.has(descriptor.digest)).toBe(false);
  expect(sha256(await readAll(await layer.open()))).toBe(descriptor.digest);
  expect((await readAll(await layer.openUncompressed())).equals(tar)).toBe(true);
  expect(await layer.fetchInto(fresh.blobs)).toBe('fetched');
  expect(await fresh.blobs.has(descriptor.digest)).toBe(true);
  expect(src.layerFor({ ...descriptor, digest: sha256('other') }, diffId)).toBeUndefined();
});

test('a registry cache layer downloads nothing until opened, and names the repository it can be mounted from', async () => {
  const reg = await startRegistry();
  const proxy = await startProxy({ target: reg.host });
  const client = new RegistryClient();
  try {
    const { store, record } = await storeWithRecord();
    await exportCacheToRegistry(client, store, { records: [record], ref: `${proxy.host}/ci/cache:main`, mode: 'max' });
    const fresh = await ImageStore.open(path.join(dir, 'fresh'));
    const reader = new RegistryClient();
    const src = (await RegistryCacheSource.load(reader, fresh, `${proxy.host}/ci/cache:main`))!;
    const before = proxy.records.length;
    const { descriptor, diffId } = record.layer!;
    const layer = src.layerFor(descriptor, diffId)!;
    expect(layer.origin).toEqual({ kind: 'cache', where: `${proxy.host}/ci/cache:main`, repository: { registry: proxy.host, repository: 'ci/cache' } });
    expect(proxy.records.length).toBe(before);
    expect(sha256(await readAll(await layer.open()))).toBe(descriptor.digest);
    const gets = proxy.records.slice(before).filter((r) => r.method === 'GET' && r.path.includes(descriptor.digest));
    expect(gets).toHaveLength(1);
    expect(await layer.fetchInto(fresh.blobs)).toBe('fetched');
    expect(await fresh.blobs.has(descriptor.digest)).toBe(true);
    reader.close();
  } finally {
    client.close();
    await proxy.stop();
    await reg.stop();
  }
});
