import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { digestHex } from '@hoist/oci';
import { startProxy, startRegistry, type RunningProxy, type RunningRegistry } from '@hoist/testkit';
import { RegistryClient, RegistryError, type ProgressEvent } from '@hoist/registry-client';
import { makeImage, newStore } from './helpers.js';

const MiB = 1024 * 1024;

describe('push and pull against docker-registry', () => {
  let reg: RunningRegistry;
  beforeEach(async () => {
    reg = await startRegistry();
  });
  afterEach(async () => {
    await reg.stop();
  });

  test('push then pull round trip', async () => {
    const img = await makeImage({ layerSizes: [10_000, 300_000] });
    const events: ProgressEvent[] = [];
    const client = new RegistryClient({ onProgress: (e) => events.push(e) });
    try {
      const ref = `${reg.host}/team/app:1`;
      const res = await client.push(img.store, img.descriptor, ref);
      expect(res.descriptor.digest).toBe(img.descriptor.digest);
      expect(Object.values(res.blobs).sort()).toEqual(['uploaded', 'uploaded', 'uploaded']);

      const dst = await newStore();
      const top = await client.pull(ref, dst);
      expect(top).toEqual({ mediaType: img.descriptor.mediaType, digest: img.descriptor.digest, size: img.descriptor.size });
      const loaded = await dst.load(top);
      expect(loaded.manifest.value.layers.map((l) => l.digest)).toEqual(img.layers.map((l) => l.digest));
      for (const l of img.layers) expect(await dst.blobs.has(l.digest)).toBe(true);

      // a second push only checks
      const again = await client.push(img.store, img.descriptor, ref);
      expect(Object.values(again.blobs)).toEqual(['exists', 'exists', 'exists']);
      expect(events.some((e) => e.kind === 'blob' && e.action === 'push' && e.done === e.total)).toBe(true);
    } finally {
      client.close();
    }
  });
});

describe('protocol details', () => {
  let reg: RunningRegistry;
  let proxy: RunningProxy | undefined;
  afterEach(async () => {
    await proxy?.stop();
    proxy = undefined;
    await reg.stop();
  });

  test('relative Location headers', async () => {
    reg = await startRegistry({ httpExtra: '  relativeurls: true' });
    proxy = await startProxy({ target: reg.host });
    const img = await makeImage({ layerSizes: [3 * MiB] });
    const client = new RegistryClient({ chunkSize: MiB });
    try {
      await client.push(img.store, img.descriptor, `${proxy.host}/team/app:1`);
      const posts = proxy.records.filter((r) => r.method === 'POST');
      expect(posts.length).toBeGreaterThan(0);
      expect(proxy.records.filter((r) => r.method === 'PATCH').length).toBe(Math.ceil(img.layers[0]!.size / MiB));
      expect(proxy.records.some((r) => r.method === 'PUT' && r.status === 201)).toBe(true);
      const dst = await newStore();
      expect((await client.pull(`${proxy.host}/team/app:1`, dst)).digest).toBe(img.descriptor.digest);
    } finally {
      client.close();
    }
  });

  test('chunks honour OCI-Chunk-Min-Length', async () => {
    reg = await startRegistry();
    proxy = await startProxy({ target: reg.host, faults: [{ method: 'POST', path: /\/blobs\/uploads\/$/, responseHeaders: { 'oci-chunk-min-length': String(MiB) }, times: 100 }] });
    const img = await makeImage({ layerSizes: [2.5 * MiB] });
    const client = new RegistryClient({ chunkSize: 256 * 1024 });
    try {
      await client.push(img.store, img.descriptor, `${proxy.host}/team/app:1`);
      const patches = proxy.records.filter((r) => r.method === 'PATCH').map((r) => r.requestBytes);
      expect(patches.slice(0, -1)).toEqual([MiB, MiB]);
      expect(patches.reduce((a, b) => a + b, 0)).toBe(img.layers[0]!.size);
    } finally {
      client.close();
    }
  });

  test('a partial download left by a killed process is resumed by the next pull', async () => {
    reg = await startRegistry();
    const img = await makeImage({ layerSizes: [4 * MiB] });
    const layer = img.layers[0]!;
    const client = new RegistryClient();
    await client.push(img.store, img.descriptor, `${reg.host}/team/app:1`);
    const dst = await newStore();
    const have = 3 * MiB;
    const head = (await fsp.readFile(img.store.blobs.path(layer.digest))).subarray(0, have);
    await fsp.mkdir(dst.blobs.tmpDir, { recursive: true });
    await fsp.writeFile(path.join(dst.blobs.tmpDir, `pull-${digestHex(layer.digest)}.partial`), head);
    proxy = await startProxy({ target: reg.host });
    try {
      await client.pull(`${proxy.host}/team/app:1`, dst);
      expect(await dst.blobs.has(layer.digest)).toBe(true);
      expect(proxy.bytes({ method: 'GET', path: new RegExp(`/blobs/${layer.digest}$`) }, 'response')).toBe(layer.size - have);
      expect(await fsp.readdir(dst.blobs.tmpDir)).toEqual([]);
    } finally {
      client.close();
    }
  });

  test('an aborted pull stops with ABORTED and leaves no manifest in the store', async () => {
    reg = await startRegistry();
    const img = await makeImage({ layerSizes: [8 * MiB, 8 * MiB] });
    const client = new RegistryClient();
    await client.push(img.store, img.descriptor, `${reg.host}/team/app:1`);
    client.close();
    const ac = new AbortController();
    const puller = new RegistryClient({ onProgress: (e) => e.kind === 'blob' && e.action === 'pull' && e.done > MiB && ac.abort() });
    const dst = await newStore();
    const e = (await puller.pull(`${reg.host}/team/app:1`, dst, { signal: ac.signal }).catch((x: unknown) => x)) as RegistryError;
    puller.close();
    expect(e).toBeInstanceOf(RegistryError);
    expect(e.code).toBe('ABORTED');
    expect(await dst.blobs.has(img.descriptor.digest)).toBe(false);
  });

  test('openBlob streams a verified blob', async () => {
    reg = await startRegistry();
    const img = await makeImage({ layerSizes: [300_000] });
    const client = new RegistryClient();
    try {
      await client.push(img.store, img.descriptor, `${reg.host}/team/app:1`);
      const s = await client.openBlob(`${reg.host}/team/app`, img.layers[0]!);
      const chunks: Buffer[] = [];
      for await (const c of s) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks).equals(await fsp.readFile(img.store.blobs.path(img.layers[0]!.digest)))).toBe(true);
      const bad = await client.openBlob(`${reg.host}/team/app`, { ...img.layers[0]!, size: img.layers[0]!.size - 1 });
      const err = await (async () => {
        for await (const _ of bad) void _;
      })().catch((x: unknown) => x);
      expect(err).toBeInstanceOf(RegistryError);
      expect((err as RegistryError).code).toBe('SIZE_MISMATCH');
    } finally {
      client.close();
    }
  });
});

describe('lazy base layers', () => {
  test('an image whose base layers were only resolved is pushed by mounting (same registry) or copying (other registry)', async () => {
    const regA = await startRegistry();
    const regB = await startRegistry();
    const client = new RegistryClient();
    try {
      const base = await makeImage({ layerSizes: [100_000, 200_000] });
      await client.push(base.store, base.descriptor, `${regA.host}/lib/base:1`);
      // a builder resolves the base without downloading its layers, and adds one layer
      const resolved = await client.resolve(`${regA.host}/lib/base:1`, { platform: { os: 'linux', architecture: 'amd64' } });
      const app = await makeImage({ layerSizes: [30_000] });
      const { writeImage, appendLayer } = await import('@hoist/oci');
      const im = appendLayer({ config: { ...resolved.config.value }, layers: resolved.manifest.value.layers }, app.layers[0]!, app.layers[0]!.digest, { created_by: 'app' });
      const w = await writeImage(app.store.blobs, im);
      for (const l of base.layers) expect(await app.store.blobs.has(l.digest)).toBe(false);

      const same = await client.push(app.store, w.descriptor, `${regA.host}/apps/web:1`);
      expect(base.layers.map((l) => same.blobs[l.digest])).toEqual(['mounted', 'mounted']);
      const other = await client.push(app.store, w.descriptor, `${regB.host}/apps/web:1`);
      expect(base.layers.map((l) => other.blobs[l.digest])).toEqual(['uploaded', 'uploaded']);
      const dst = await newStore();
      expect((await client.pull(`${regB.host}/apps/web:1`, dst)).digest).toBe(w.descriptor.digest);
      for (const l of base.layers) expect(await dst.blobs.has(l.digest)).toBe(true);
      // a client that knows no source fails clearly
      const fresh = new RegistryClient();
      const e = (await fresh.push(app.store, w.descriptor, `${regB.host}/apps/other:1`).catch((x: unknown) => x)) as RegistryError;
      fresh.close();
      expect(e.code).toBe('BLOB_UNKNOWN');
    } finally {
      client.close();
      await regA.stop();
      await regB.stop();
    }
  });
});
