/**
 * Layer verification without extraction (checkLayer, LayerChecker): what `hoist pull`, `push`
 * and `fsck` use to refuse an image whose layers do not match its config or escape the root.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { ImageStore, MediaType, type Descriptor, type Digest } from '@hoist/oci';
import { LayerChecker, Snapshotter, SnapshotError, applyLayer, checkLayer, encodeHeader, walkTree, readXattrsTree, writeLayer, type TarHeader } from '@hoist/snapshotter';
import { FIXTURES, HOSTILE_LAYERS, sh, tmpdir } from './helpers.js';


const sha = (b: Buffer): Digest => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;

/** A tar of headers (bodies of regular files filled with `x`). */
function tarOf(entries: Array<Partial<TarHeader> & Pick<TarHeader, 'name' | 'type'>>): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const size = e.type === 'file' ? (e.size ?? 3) : 0;
    parts.push(encodeHeader({ mode: 0o755, uid: 0, gid: 0, mtime: 1, ...e, size }));
    if (size > 0) parts.push(Buffer.alloc(size, 'x'), Buffer.alloc((512 - (size % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

async function putLayer(store: ImageStore, data: Buffer): Promise<Descriptor> {
  const put = await store.blobs.put(Readable.from([data]));
  return { mediaType: MediaType.OciLayerGzip, digest: put.digest, size: put.size };
}

describe('checkLayer', () => {
  test.each(HOSTILE_LAYERS)('%s is refused with %s, as extraction refuses it', async (name, code) => {
    const e = await checkLayer(createReadStream(path.join(FIXTURES, name))).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SnapshotError);
    expect((e as SnapshotError).code).toBe(code);
  });

  test('gives the diff_id of a layer (plain or gzip) and checks the one it is announced with', async () => {
    const tar = await fsp.readFile(path.join(FIXTURES, 'benign.tar'));
    const want = `sha256:${sh(`sha256sum ${FIXTURES}/benign.tar`).split(' ')[0]}`;
    expect((await checkLayer(Readable.from([tar]))).diffId).toBe(want);
    const r = await checkLayer(Readable.from([gzipSync(tar)]), { diffId: want as Digest });
    expect([r.diffId, r.size]).toEqual([want, tar.length]);
    const e = await checkLayer(Readable.from([gzipSync(tar)]), { diffId: sha(Buffer.from('other')) }).catch((x: unknown) => x);
    expect((e as SnapshotError).code).toBe('DIFF_ID_MISMATCH');
    expect((e as Error).message).toContain(want);
  });

  test('accepts what extraction accepts: absolute symlinks not written through, a dir replacing a link, in-root links', async () => {
    const tar = tarOf([
      { name: 'usr', type: 'dir' },
      { name: 'usr/lib', type: 'dir' },
      { name: 'lib', type: 'symlink', linkname: 'usr/lib' },
      { name: 'lib/libx.so', type: 'file' },
      { name: 'etc', type: 'dir' },
      { name: 'etc/localtime', type: 'symlink', linkname: '/usr/share/zoneinfo/UTC' },
      { name: 'a', type: 'symlink', linkname: '/somewhere' },
      { name: 'a', type: 'dir' },
      { name: 'a/file', type: 'file' },
      { name: 'b', type: 'symlink', linkname: '../../out' },
      { name: 'b', type: 'file' },
      { name: 'hard', type: 'link', linkname: 'usr/lib/libx.so' },
      { name: 'usr/.wh.gone', type: 'file' },
    ]);
    expect((await checkLayer(Readable.from([tar]))).entries).toBe(13);
    const root = await tmpdir('verify-apply-');
    await applyLayer(Readable.from([tar]), root);
    expect((await fsp.readdir(path.join(root, 'usr', 'lib'))).sort()).toEqual(['libx.so']);
    expect((await fsp.stat(path.join(root, 'a', 'file'))).isFile()).toBe(true);
  });
});

describe('LayerChecker', () => {
  const tar = tarOf([{ name: 'hello', type: 'file', size: 5000 }]);
  const diffId = sha(tar);
  const gz = gzipSync(tar);

  test('verifies a stored layer once: the diff_id it found is remembered with the blob', async () => {
    const store = await ImageStore.open(await tmpdir('checker-'));
    const layer = await putLayer(store, gz);
    const checks = new LayerChecker(store.blobs);
    expect(await checks.known(layer, diffId)).toBe(false);
    await checks.verify(layer, diffId);
    expect(await store.blobs.verifiedDiffId(layer.digest)).toBe(diffId);
    // the blob is not read again: without its file, verify still passes on the record
    await fsp.rm(store.blobs.path(layer.digest));
    await checks.verify(layer, diffId);
    const e = await checks.known(layer, sha(Buffer.from('another'))).catch((x: unknown) => x);
    expect((e as SnapshotError).code).toBe('DIFF_ID_MISMATCH');
    await store.blobs.delete(layer.digest);
    expect(await checks.known(layer, diffId)).toBe(false);
  });

  test('a wrong diff_id is not remembered; an image with more layers than diff_ids is refused', async () => {
    const store = await ImageStore.open(await tmpdir('checker-'));
    const layer = await putLayer(store, gz);
    const checks = new LayerChecker(store.blobs);
    const e = await checks.verifyImage({ layers: [layer] }, { rootfs: { type: 'layers', diff_ids: [sha(Buffer.from('x'))] } }).catch((x: unknown) => x);
    expect((e as SnapshotError).code).toBe('DIFF_ID_MISMATCH');
    expect((e as Error).message).toContain(`layer 1 of 1 (${layer.digest})`);
    expect(await store.blobs.verifiedDiffId(layer.digest)).toBeUndefined();
    const c = await checks.verifyImage({ layers: [layer, layer] }, { rootfs: { type: 'layers', diff_ids: [diffId] } }).catch((x: unknown) => x);
    expect((c as Error).message).toContain('2 layer(s) but the image config 1 diff_id(s)');
  });

  test('before a push, layers not in the store (lazy base layers) are left to the registry; present ones are checked', async () => {
    const store = await ImageStore.open(await tmpdir('checker-'));
    const present = await putLayer(store, gz);
    const absent: Descriptor = { mediaType: MediaType.OciLayerGzip, digest: sha(Buffer.from('never pulled')), size: 12 };
    const manifestOf = async (ids: Digest[]): Promise<{ layers: Descriptor[]; config: Descriptor }> => ({
      layers: [absent, present],
      config: await store.blobs.putBytes(Buffer.from(JSON.stringify({ rootfs: { type: 'layers', diff_ids: ids } })), MediaType.OciConfig),
    });
    const checks = new LayerChecker(store.blobs);
    await checks.verifyManifest(await manifestOf([sha(Buffer.from('base')), diffId]));
    const e = await checks.verifyManifest(await manifestOf([sha(Buffer.from('base')), sha(Buffer.from('wrong'))])).catch((x: unknown) => x);
    expect((e as Error).message).toContain(`layer 2 of 2 (${present.digest})`);
    const strict = await checks.verifyImage({ layers: [absent] }, { rootfs: { type: 'layers', diff_ids: [diffId] } }).catch((x: unknown) => x);
    expect((strict as Error).message).toContain(`${absent.digest} is not in the store`);
  });

  test('a check fed while downloading stops taking bytes once the layer is known bad', async () => {
    const store = await ImageStore.open(await tmpdir('checker-'));
    // uncompressed, so that the bytes after the bad member are many more than the check buffers
    const bad = Buffer.concat([tarOf([{ name: '../../escape', type: 'file' }]).subarray(0, 1024), Buffer.alloc(4 * 1024 * 1024)]);
    const checks = new LayerChecker(store.blobs);
    const check = checks.begin({ digest: sha(bad) }, diffId);
    let accepted = 0;
    let failure: unknown;
    for (let i = 0; i < bad.length; i += 1024) {
      try {
        await check.write(bad.subarray(i, i + 1024));
        accepted++;
      } catch (e) {
        failure = e;
        break;
      }
    }
    expect((failure as SnapshotError).code).toBe('LAYER_UNSAFE_PATH');
    expect(accepted).toBeLessThan(Math.ceil(bad.length / 1024));
    await expect(check.end()).rejects.toThrow(/escapes the root/);

    const good = checks.begin({ digest: sha(gz) }, diffId);
    for (let i = 0; i < gz.length; i += 100) await good.write(gz.subarray(i, i + 100));
    await good.end();
    expect(await store.blobs.verifiedDiffId(sha(gz))).toBe(diffId);
    const dropped = checks.begin({ digest: sha(gz) }, diffId);
    await dropped.write(gz.subarray(0, 10));
    dropped.abort();
  });

  test('layers written by writeLayer and unpacked by ensureLayer are remembered as verified', async () => {
    const dir = await tmpdir('checker-');
    const store = await ImageStore.open(path.join(dir, 'oci'));
    const tree = await tmpdir('checker-tree-');
    await fsp.writeFile(path.join(tree, 'f'), 'content');
    const w = await writeLayer(store.blobs, walkTree(tree, await readXattrsTree(tree), { overlay: false }));
    expect(await store.blobs.verifiedDiffId(w.descriptor.digest)).toBe(w.diffId);
    const snaps = await Snapshotter.open({ root: path.join(dir, 'snapshots'), blobs: store.blobs, driver: 'overlay' });
    const pulled = await putLayer(store, gz);
    await snaps.ensureLayer({ diffId, descriptor: pulled });
    expect(await store.blobs.verifiedDiffId(pulled.digest)).toBe(diffId);
  });
});

describe('snapshot root permissions', () => {
  test('Snapshotter.open makes its root private, also one an older version made 0755', async () => {
    const dir = await tmpdir('perm-');
    const store = await ImageStore.open(path.join(dir, 'oci'));
    const root = path.join(dir, 'snapshots');
    await fsp.mkdir(root, { mode: 0o755 });
    await fsp.chmod(root, 0o755);
    await Snapshotter.open({ root, blobs: store.blobs, driver: 'copy' });
    expect((await fsp.stat(root)).mode & 0o7777).toBe(0o700);
    const fresh = path.join(dir, 'fresh', 'snapshots');
    await Snapshotter.open({ root: fresh, blobs: store.blobs, driver: 'copy' });
    expect((await fsp.stat(fresh)).mode & 0o7777).toBe(0o700);
  });
});
