import type { Readable } from 'node:stream';
import { startProxy, startRegistry, type RunningProxy, type RunningRegistry } from '@hoist/testkit';
import { RegistryClient, RegistryError } from '@hoist/registry-client';
import { parseConfig, sha256, type Digest } from '@hoist/oci';
import { makeImage, newStore, type TestImage } from './helpers.js';

async function readAll(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function diffIds(img: TestImage): Promise<Digest[]> {
  return parseConfig(await img.store.blobs.getBytes(img.config)).value.rootfs.diff_ids;
}

const blobGets = (p: RunningProxy): number => p.records.filter((r) => r.method === 'GET' && /\/blobs\/sha256:/.test(r.path)).length;

describe('RegistryLayer', () => {
  let reg: RunningRegistry;
  let img: TestImage;
  beforeAll(async () => {
    reg = await startRegistry();
    img = await makeImage({ layerSizes: [60_000] });
    const client = new RegistryClient();
    await client.push(img.store, img.descriptor, `${reg.host}/lib/lazy:1`);
    client.close();
  });
  afterAll(async () => {
    await reg.stop();
  });

  test('nothing is requested until it is opened; open, openUncompressed and fetchInto each read the verified blob', async () => {
    const proxy = await startProxy({ target: reg.host });
    const client = new RegistryClient();
    try {
      const desc = img.layers[0]!;
      const [diffId] = await diffIds(img);
      const layer = client.layer(`${proxy.host}/lib/lazy:1`, desc, diffId!);
      expect(layer.origin).toEqual({ kind: 'registry', where: `${proxy.host}/lib/lazy`, repository: { registry: proxy.host, repository: 'lib/lazy' } });
      expect(await layer.available()).toBe(true);
      expect(proxy.records).toHaveLength(0);

      expect(sha256(await readAll(await layer.open()))).toBe(desc.digest);
      expect(blobGets(proxy)).toBe(1);
      expect(sha256(await readAll(await layer.openUncompressed()))).toBe(diffId);
      expect(blobGets(proxy)).toBe(2);
      const dst = await newStore();
      expect(await layer.fetchInto(dst.blobs)).toBe('fetched');
      expect(await dst.blobs.has(desc.digest)).toBe(true);
      expect(blobGets(proxy)).toBe(3);
      expect(await layer.fetchInto(dst.blobs)).toBe('exists');
      expect(blobGets(proxy)).toBe(3);
    } finally {
      client.close();
      await proxy.stop();
    }
  });

  test('bytes that do not match the digest fail open with DIGEST_MISMATCH, and fetchInto stores nothing', async () => {
    const proxy = await startProxy({ target: reg.host, faults: [{ method: 'GET', path: /\/blobs\/sha256:/, corruptResponseAt: 1000, times: 2 }] });
    const client = new RegistryClient({ retry: { attempts: 1, baseMs: 10, maxMs: 20 } });
    try {
      const [diffId] = await diffIds(img);
      const layer = client.layer(`${proxy.host}/lib/lazy:1`, img.layers[0]!, diffId!);
      const err = await readAll(await layer.open()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RegistryError);
      expect((err as RegistryError).code).toBe('DIGEST_MISMATCH');
      const dst = await newStore();
      await expect(layer.fetchInto(dst.blobs)).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
      expect(await dst.blobs.has(img.layers[0]!.digest)).toBe(false);
    } finally {
      client.close();
      await proxy.stop();
    }
  });
});
