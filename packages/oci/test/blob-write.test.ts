/**
 * BlobStore.write: callers stream into the store (a layer tarred and compressed, say) and the
 * store hashes what arrives itself; a failed or wrong write leaves no temp file and no blob.
 * Downloads use the store's own partial paths and commit through it.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type BlobStore, ImageStore, sha256, writeFileAtomic, type Digest } from '@hoist/oci';

const hex = (b: Buffer): Digest => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;

describe('BlobStore.write', () => {
  let dir: string;
  let blobs: BlobStore;
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hoist-blobs-'));
    blobs = (await ImageStore.open(dir)).blobs;
  });
  afterEach(async () => fsp.rm(dir, { recursive: true, force: true }));

  const tmpFiles = (): Promise<string[]> => fsp.readdir(blobs.tmpDir).catch(() => []);

  it('stores the bytes that reach the writable, hashed by the store', async () => {
    const upper = new Transform({ transform: (c: Buffer, _e, cb) => cb(null, Buffer.from(c.toString().toUpperCase())) });
    const r = await blobs.write((out) => pipeline(Readable.from([Buffer.from('hello '), Buffer.from('world')]), upper, out), { prefix: 'test' });
    const want = Buffer.from('HELLO WORLD');
    expect(r).toEqual({ digest: hex(want), size: want.length });
    expect(await fsp.readFile(blobs.path(r.digest))).toEqual(want);
    expect(await tmpFiles()).toEqual([]);
  });

  it('a failing writer leaves neither a blob nor a temp file', async () => {
    const boom = new PassThrough();
    const fill = (out: NodeJS.WritableStream): Promise<void> => {
      setImmediate(() => boom.destroy(new Error('source broke')));
      return pipeline(boom, out as never);
    };
    await expect(blobs.write(fill)).rejects.toThrow('source broke');
    expect(await tmpFiles()).toEqual([]);
    expect(await fsp.readdir(blobs.blobsDir).catch(() => [])).toEqual([]);
  });

  it('bytes that do not match the expected digest are not stored', async () => {
    const other = sha256('something else');
    await expect(blobs.write((out) => pipeline(Readable.from([Buffer.from('data')]), out), { expected: { digest: other } })).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
    expect(await blobs.has(hex(Buffer.from('data')))).toBe(false);
    expect(await tmpFiles()).toEqual([]);
  });

  it('a download is kept at the store\'s partial path and committed through the store', async () => {
    const data = Buffer.from('layer bytes');
    const desc = { digest: hex(data), size: data.length };
    const { partial, lock } = await blobs.downloadPaths(desc.digest);
    expect([path.dirname(partial), path.dirname(lock)]).toEqual([blobs.tmpDir, blobs.tmpDir]);
    expect(partial).not.toBe(lock);
    await fsp.writeFile(partial, data);
    await blobs.commitDownload(partial, desc);
    expect(await blobs.has(desc.digest)).toBe(true);
    expect(await tmpFiles()).toEqual([]);
  });
});

describe('fsyncs (issue 16: a committed layer paid five)', () => {
  /** Counts FileHandle.sync calls while `fn` runs. */
  async function syncs(fn: () => Promise<unknown>): Promise<number> {
    const probe = await fsp.open(path.join(dir, 'oci-layout'), 'r');
    const proto = Object.getPrototypeOf(probe) as { sync: (...a: unknown[]) => Promise<void> };
    await probe.close();
    const orig = proto.sync;
    let n = 0;
    proto.sync = function (this: unknown, ...a: unknown[]) {
      n++;
      return orig.apply(this, a);
    };
    try {
      await fn();
    } finally {
      proto.sync = orig;
    }
    return n;
  }
  let dir: string;
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hoist-syncs-'));
  });
  afterEach(async () => fsp.rm(dir, { recursive: true, force: true }));

  it('a blob is fsynced before its rename; the verified-layer note (a cache the reader validates) is not', async () => {
    const store = await ImageStore.open(dir);
    const digest = sha256(Buffer.from('layer'));
    expect(await syncs(() => store.blobs.putBytes(Buffer.from('layer'), 'application/octet-stream'))).toBeGreaterThan(0);
    expect(await syncs(() => store.blobs.noteVerifiedLayer(digest, sha256(Buffer.from('tar'))))).toBe(0);
    expect(await store.blobs.verifiedDiffId(digest)).toBe(sha256(Buffer.from('tar')));
    expect(await syncs(() => writeFileAtomic(path.join(dir, 'x.json'), '{}'))).toBe(1);
    expect(await syncs(() => writeFileAtomic(path.join(dir, 'y.json'), '{}', { sync: false }))).toBe(0);
    expect(await fsp.readFile(path.join(dir, 'y.json'), 'utf8')).toBe('{}');
  });

  it('putBytesInOrder: every blob fsynced before any rename, renamed in the order given; a stored one costs nothing', async () => {
    const store = await ImageStore.open(dir);
    const config = Buffer.from('{"config":1}');
    const manifest = Buffer.from('{"manifest":1}');
    const events: string[] = [];
    const probe = await fsp.open(path.join(dir, 'oci-layout'), 'r');
    const proto = Object.getPrototypeOf(probe) as { sync: (...a: unknown[]) => Promise<void> };
    await probe.close();
    const origSync = proto.sync;
    const origRename = fsp.rename;
    proto.sync = function (this: unknown, ...a: unknown[]) {
      events.push('sync');
      return origSync.apply(this, a);
    };
    (fsp as { rename: typeof fsp.rename }).rename = async (a, b) => {
      events.push(`rename ${path.basename(String(b))}`);
      return origRename(a, b);
    };
    try {
      const d = await store.blobs.putBytesInOrder([
        { data: config, mediaType: 'application/vnd.oci.image.config.v1+json' },
        { data: manifest, mediaType: 'application/vnd.oci.image.manifest.v1+json' },
      ]);
      expect(d.map((x) => x.digest)).toEqual([sha256(config), sha256(manifest)]);
      expect(d.map((x) => x.size)).toEqual([config.length, manifest.length]);
    } finally {
      proto.sync = origSync;
      (fsp as { rename: typeof fsp.rename }).rename = origRename;
    }
    expect(events).toEqual(['sync', 'sync', `rename ${sha256(config).slice(7)}`, `rename ${sha256(manifest).slice(7)}`]);
    expect(await store.blobs.getBytes({ digest: sha256(manifest), size: manifest.length })).toEqual(manifest);
    expect(await fsp.readdir(store.blobs.tmpDir).catch(() => [])).toEqual([]);
    expect(await syncs(() => store.blobs.putBytesInOrder([{ data: config, mediaType: 'x' }, { data: manifest, mediaType: 'y' }]))).toBe(0);
  });

  it('a torn verified-layer note reads as not verified', async () => {
    const store = await ImageStore.open(dir);
    const digest = sha256(Buffer.from('layer'));
    await store.blobs.noteVerifiedLayer(digest, sha256(Buffer.from('tar')));
    await fsp.writeFile(path.join(store.blobs.verifiedDir, digest.slice('sha256:'.length)), 'sha256:12');
    expect(await store.blobs.verifiedDiffId(digest)).toBeUndefined();
  });
});
