import { promises as fsp } from 'node:fs';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { BlobStore, LayerCatalog, MediaType, OciError, StoreLayer, sha256, type Descriptor, type Digest, type Layer, type LayerProvider } from '@hoist/oci';
import { tmpDir } from './temp.js';

const tmp = (): Promise<string> => tmpDir('hoist-layer-');

async function readAll(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** A gzip layer in `blobs`: its descriptor and the digest of its uncompressed bytes. */
async function gzLayer(blobs: BlobStore, text: string): Promise<{ desc: Descriptor; diffId: Digest; tar: Buffer }> {
  const tar = Buffer.from(text.repeat(1000));
  const put = await blobs.put(Readable.from([gzipSync(tar)]));
  return { desc: { mediaType: MediaType.OciLayerGzip, digest: put.digest, size: put.size }, diffId: sha256(tar), tar };
}

describe('StoreLayer', () => {
  test('open gives the blob, openUncompressed the tar; fetchInto copies it into another store once', async () => {
    const blobs = new BlobStore(await tmp());
    const l = await gzLayer(blobs, 'hello layer\n');
    const layer = new StoreLayer(blobs, l.desc, l.diffId);
    expect(layer.origin).toEqual({ kind: 'store', where: blobs.root });
    expect(await layer.available()).toBe(true);
    expect(sha256(await readAll(await layer.open()))).toBe(l.desc.digest);
    expect((await readAll(await layer.openUncompressed())).equals(l.tar)).toBe(true);
    const other = new BlobStore(await tmp());
    expect(await layer.fetchInto(other)).toBe('fetched');
    expect(await other.has(l.desc.digest)).toBe(true);
    expect(await layer.fetchInto(other)).toBe('exists');
  });

  test('a blob changed on disk fails open with DIGEST_MISMATCH; a wrong diff_id fails openUncompressed with DIFF_ID_MISMATCH', async () => {
    const blobs = new BlobStore(await tmp());
    const l = await gzLayer(blobs, 'bytes\n');
    const wrongDiff = new StoreLayer(blobs, l.desc, sha256('not this'));
    await expect(readAll(await wrongDiff.openUncompressed())).rejects.toMatchObject({ code: 'DIFF_ID_MISMATCH' });
    const file = blobs.path(l.desc.digest);
    const bytes = await fsp.readFile(file);
    bytes[bytes.length - 9] = bytes[bytes.length - 9]! ^ 0xff; // inside the gzip trailer's CRC: same size, other digest
    await fsp.chmod(file, 0o644);
    await fsp.writeFile(file, bytes);
    const layer = new StoreLayer(blobs, l.desc, l.diffId);
    const err = await readAll(await layer.open()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OciError);
    expect((err as OciError).code).toBe('DIGEST_MISMATCH');
    // nothing unverified reaches another store
    const other = new BlobStore(await tmp());
    await expect(layer.fetchInto(other)).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
    expect(await other.has(l.desc.digest)).toBe(false);
  });

  test('a blob that is not in the store is not available, and open fails with BLOB_UNKNOWN', async () => {
    const blobs = new BlobStore(await tmp());
    const layer = new StoreLayer(blobs, { mediaType: MediaType.OciLayerGzip, digest: sha256('absent'), size: 6 }, sha256('x'));
    expect(await layer.available()).toBe(false);
    await expect(readAll(await layer.open())).rejects.toMatchObject({ code: 'BLOB_UNKNOWN' });
  });
});

describe('LayerCatalog', () => {
  test('finds a blob in the store first, then a known remote layer, then a provider; none asked makes a transfer', async () => {
    const blobs = new BlobStore(await tmp());
    const here = await gzLayer(blobs, 'local\n');
    const elsewhere = new BlobStore(await tmp());
    const base = await gzLayer(elsewhere, 'base\n');
    const cached = await gzLayer(elsewhere, 'cached\n');
    const asked: string[] = [];
    const provider: LayerProvider = {
      layerFor: (d, diffId) => {
        asked.push(d.digest);
        return d.digest === cached.desc.digest ? new StoreLayer(elsewhere, d, diffId) : undefined;
      },
    };
    const catalog = new LayerCatalog(blobs, [provider]);
    const baseLayer: Layer = new StoreLayer(elsewhere, base.desc, base.diffId);
    catalog.add([baseLayer]);

    const a = await catalog.find(here.desc, here.diffId);
    expect(a?.origin).toEqual({ kind: 'store', where: blobs.root });
    expect(await catalog.find(base.desc, base.diffId)).toBe(baseLayer);
    expect((await catalog.find(cached.desc, cached.diffId))?.origin.where).toBe(elsewhere.root);
    expect(await catalog.find({ ...here.desc, digest: sha256('nowhere') }, here.diffId)).toBeUndefined();
    // the provider is asked only for blobs neither the store nor a known layer has
    expect(asked).toEqual([cached.desc.digest, sha256('nowhere')]);
    expect(await blobs.has(base.desc.digest)).toBe(false);
    expect(await blobs.has(cached.desc.digest)).toBe(false);
  });
});
