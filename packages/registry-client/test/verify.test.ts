/**
 * Pull and push verify layers against the image config (issue 17 item 9): diff_ids checked in
 * the same pass as the download, unsafe layers refused, nothing stored (or pushed) as usable.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { encodeHeader, LayerChecker } from '@hoist/snapshotter';
import { digestHex, parseConfig, type Descriptor, type Digest, type ImageStore } from '@hoist/oci';
import { startProxy, startRegistry, type RunningProxy, type RunningRegistry } from '@hoist/testkit';
import { RegistryClient, RegistryError, type LayerChecks } from '@hoist/registry-client';
import { craftImage, makeImage, newStore, storeFiles, tarOf } from './helpers.js';

const MiB = 1024 * 1024;
const fast = { retry: { baseMs: 10, maxMs: 50 } };
const sha = (b: Buffer): Digest => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;

/** LayerChecker with a count of how each layer was checked. */
function counted(store: ImageStore): { checks: LayerChecks; calls: { known: number; begin: number; verify: number } } {
  const inner = new LayerChecker(store.blobs);
  const calls = { known: 0, begin: 0, verify: 0 };
  return {
    calls,
    checks: {
      known: (l, d) => (calls.known++, inner.known(l, d)),
      begin: (l, d) => (calls.begin++, inner.begin(l, d)),
      verify: (l, d, s) => (calls.verify++, inner.verify(l, d, s)),
    },
  };
}

/** A tar with one member of this name (a hostile one when the name escapes). */
function memberTar(name: string, type: 'file' | 'link' = 'file', linkname?: string): Buffer {
  const body = type === 'file' ? Buffer.from('pwned\n') : Buffer.alloc(0);
  const h = encodeHeader({ name, type, mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: 0, ...(linkname ? { linkname } : {}) });
  return Buffer.concat([h, body, Buffer.alloc((512 - (body.length % 512)) % 512), Buffer.alloc(1024)]);
}

async function diffIdsOf(store: ImageStore, config: Descriptor): Promise<Digest[]> {
  return parseConfig(await store.blobs.getBytes(config)).value.rootfs.diff_ids;
}

describe('pull verifies layers against the image config', () => {
  let reg: RunningRegistry;
  let proxy: RunningProxy | undefined;
  let client: RegistryClient;
  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(async () => reg.stop());
  beforeEach(() => {
    client = new RegistryClient(fast);
  });
  afterEach(async () => {
    client.close();
    await proxy?.stop();
    proxy = undefined;
  });

  const publish = async (img: { store: ImageStore; descriptor: Descriptor }, repo: string): Promise<string> => {
    const ref = `${reg.host}/${repo}:1`;
    await client.push(img.store, img.descriptor, ref); // no checks: the registry gets whatever the image is
    return ref;
  };

  test('each layer is checked while it downloads; what was verified is not decompressed again', async () => {
    const img = await makeImage({ layerSizes: [10_000, 300_000] });
    const ref = await publish(img, 'good/app');
    const dst = await newStore();
    const first = counted(dst);
    expect((await client.pull(ref, dst, { checks: first.checks })).digest).toBe(img.descriptor.digest);
    expect(first.calls).toEqual({ known: 2, begin: 2, verify: 0 });
    const ids = await diffIdsOf(img.store, img.config);
    expect(await Promise.all(img.layers.map((l) => dst.blobs.verifiedDiffId(l.digest)))).toEqual(ids);
    const again = counted(dst);
    await client.pull(ref, dst, { checks: again.checks });
    expect(again.calls).toEqual({ known: 2, begin: 0, verify: 0 });
    // a blob that is in the store without a record is verified from the store
    const other = await newStore();
    await other.blobs.put(img.store.blobs.get(img.layers[1]!));
    const third = counted(other);
    await client.pull(ref, other, { checks: third.checks });
    expect(third.calls).toEqual({ known: 2, begin: 1, verify: 1 });
    expect(await other.blobs.verifiedDiffId(img.layers[1]!.digest)).toBe(ids[1]);
  });

  test('a download cut in the middle resumes and is still checked in one pass', async () => {
    const img = await makeImage({ layerSizes: [1000, 5 * MiB] });
    const ref = await publish(img, 'resume/app');
    const big = img.layers[1]!;
    proxy = await startProxy({ target: reg.host, faults: [{ method: 'GET', path: new RegExp(`/blobs/${big.digest}$`), cutResponseAfter: 2 * MiB }] });
    const dst = await newStore();
    const c = counted(dst);
    await client.pull(ref.replace(reg.host, proxy.host), dst, { checks: c.checks });
    expect(proxy.records.filter((r) => r.path.endsWith(big.digest)).length).toBe(2);
    expect(c.calls).toEqual({ known: 2, begin: 2, verify: 0 });
    expect(await dst.blobs.verifiedDiffId(big.digest)).toBe((await diffIdsOf(img.store, img.config))[1]);
  });

  test('a partial download a killed process left is checked from its start, still in one pass', async () => {
    const img = await makeImage({ layerSizes: [3 * MiB] });
    const ref = await publish(img, 'partial/app');
    const layer = img.layers[0]!;
    const dst = await newStore();
    const blob = await img.store.blobs.getBytes(layer, Number.POSITIVE_INFINITY);
    await fsp.mkdir(dst.blobs.tmpDir, { recursive: true });
    await fsp.writeFile(path.join(dst.blobs.tmpDir, `pull-${digestHex(layer.digest)}.partial`), blob.subarray(0, MiB));
    proxy = await startProxy({ target: reg.host });
    const c = counted(dst);
    await client.pull(ref.replace(reg.host, proxy.host), dst, { checks: c.checks });
    expect(proxy.bytes({ method: 'GET', path: new RegExp(`/blobs/${layer.digest}$`) }, 'response')).toBe(layer.size - MiB);
    expect(c.calls).toEqual({ known: 1, begin: 1, verify: 0 });
    expect(await dst.blobs.verifiedDiffId(layer.digest)).toBe((await diffIdsOf(img.store, img.config))[0]);
  });

  test('a corrupted transfer is a digest error, not an invalid image (the check fails first, at the flipped byte)', async () => {
    // big enough that the check has failed (and said so) long before the last byte arrives
    const img = await makeImage({ layerSizes: [5 * MiB] });
    const ref = await publish(img, 'corrupt/app');
    proxy = await startProxy({ target: reg.host, faults: [{ method: 'GET', path: new RegExp(`/blobs/${img.layers[0]!.digest}$`), corruptResponseAt: 20, times: 10 }] });
    const dst = await newStore();
    const e = await client.pull(ref.replace(reg.host, proxy.host), dst, { checks: new LayerChecker(dst.blobs) }).catch((x: unknown) => x);
    expect((e as RegistryError).code).toBe('DIGEST_MISMATCH');
  });

  const refused: Array<[string, () => Buffer, Digest | undefined, RegExp]> = [
    ['a diff_id that does not match the layer', () => tarOf('a.txt', Buffer.from('a')), sha(Buffer.from('something else')), /layer 1 of 1 .*hashes to sha256:[0-9a-f]{64}, its image config says diff_id/],
    ['a `../` member', () => memberTar('../../etc/cron.d/evil'), undefined, /layer member path escapes the root/],
    ['an absolute member', () => memberTar('/etc/cron.d/evil'), undefined, /layer member has an absolute path/],
    ['a hard link out of the root', () => memberTar('h', 'link', '../../etc/shadow'), undefined, /escapes the root/],
  ];
  test.each(refused)('an image with %s is refused: IMAGE_INVALID, manifest not stored', async (_what, tar, diffId, message) => {
    const src = await newStore();
    const img = await craftImage(src, [diffId ? { tar: tar(), diffId } : { tar: tar() }], 'x/bad:1');
    const ref = await publish(img, 'bad/app');
    const dst = await newStore();
    const e = await client.pull(ref, dst, { checks: new LayerChecker(dst.blobs) }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RegistryError);
    expect((e as RegistryError).code).toBe('IMAGE_INVALID');
    expect((e as Error).message).toMatch(message);
    expect((e as Error).message).toContain(img.layers[0]!.digest);
    const files = await storeFiles(dst);
    expect(files).not.toContain(img.descriptor.digest);
    expect(await dst.blobs.verifiedDiffId(img.layers[0]!.digest)).toBeUndefined();
    expect(await dst.list()).toEqual([]);
  });

  test('a config with more diff_ids than layers is refused before any layer is downloaded', async () => {
    const src = await newStore();
    const img = await craftImage(src, [{ tar: tarOf('a', Buffer.from('a')) }], 'x/short:1', [sha(Buffer.from('missing layer'))]);
    const ref = await publish(img, 'short/app');
    proxy = await startProxy({ target: reg.host });
    const dst = await newStore();
    const e = await client.pull(ref.replace(reg.host, proxy.host), dst, { checks: new LayerChecker(dst.blobs) }).catch((x: unknown) => x);
    expect((e as RegistryError).code).toBe('IMAGE_INVALID');
    expect((e as Error).message).toContain('the manifest lists 1 layer(s) but the image config 2 diff_id(s)');
    expect(proxy.records.filter((r) => r.method === 'GET' && r.path.endsWith(img.layers[0]!.digest))).toEqual([]);
    expect(await storeFiles(dst)).not.toContain(img.descriptor.digest);
  });

  test('push refuses a local image whose layers do not match its config; the registry gets no manifest', async () => {
    const src = await newStore();
    const bad = await craftImage(src, [{ tar: tarOf('a', Buffer.from('a')), diffId: sha(Buffer.from('b')) }], 'x/bad:2');
    const ref = `${reg.host}/pushbad/app:1`;
    const e = await client.push(src, bad.descriptor, ref, { checks: new LayerChecker(src.blobs) }).catch((x: unknown) => x);
    expect((e as RegistryError).code).toBe('IMAGE_INVALID');
    expect((e as Error).message).toContain(`local image ${bad.descriptor.digest}: layer 1 of 1 (${bad.layers[0]!.digest})`);
    expect((e as RegistryError).hint).toContain('hoist fsck');
    expect(await client.headManifest(ref)).toBeUndefined();
    const good = await makeImage({ layerSizes: [2000] });
    const res = await client.push(good.store, good.descriptor, ref, { checks: new LayerChecker(good.store.blobs) });
    expect(res.descriptor.digest).toBe(good.descriptor.digest);
  });
});
