import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { ImageStore } from '@hoist/oci';
import { ByteSource, GZIP_BLOCK, ParallelGzip, encodeHeader, gzipOneBlock, layerTar, readTar, readXattrsTree, walkTree, writeLayer, type TarHeader } from '@hoist/snapshotter';
import { sh, tmpdir } from './helpers.js';

async function gzip(data: Buffer, opts: ConstructorParameters<typeof ParallelGzip>[0], chunk = 70_001): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let o = 0; o < data.length; o += chunk) parts.push(data.subarray(o, o + chunk));
  const out: Buffer[] = [];
  await pipeline(Readable.from(parts), new ParallelGzip(opts), new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) }));
  return Buffer.concat(out);
}

describe('ParallelGzip', () => {
  const text = Buffer.from('the quick brown fox jumps over the lazy dog\n'.repeat(40_000));
  const data = Buffer.concat([text, randomBytes(700_000), text.subarray(0, 123_457)]);

  test('produces one valid gzip member (zlib, gzip -t) with the right content', async () => {
    const gz = await gzip(data, {});
    expect(gunzipSync(gz).equals(data)).toBe(true);
    const dir = await tmpdir('gz-');
    await fsp.writeFile(path.join(dir, 'x.gz'), gz);
    sh(`gzip -t ${dir}/x.gz`);
    expect(sh(`gzip -dc ${dir}/x.gz | sha256sum`)).toBe(sh(`gunzip -c ${dir}/x.gz | sha256sum`));
    expect(gz.length).toBeLessThan(data.length * 0.7);
  });

  test('output depends on level and block size only, not on concurrency or input chunking', async () => {
    const a = await gzip(data, { concurrency: 1 }, 1000);
    const b = await gzip(data, { concurrency: 16 }, 1 << 20);
    expect(a.equals(b)).toBe(true);
    const c = await gzip(data, { level: 1 });
    expect(c.equals(a)).toBe(false);
    expect(gunzipSync(c).equals(data)).toBe(true);
  });

  test('empty input is a valid empty gzip', async () => {
    const gz = await gzip(Buffer.alloc(0), {});
    expect(gunzipSync(gz).length).toBe(0);
  });

  test('gzipOneBlock writes byte for byte what the stream writes, for inputs up to one block', async () => {
    const inputs = [Buffer.alloc(0), Buffer.from('x'), data.subarray(0, 4097), data.subarray(700_000, 700_000 + GZIP_BLOCK)];
    for (const input of inputs) {
      for (const level of [6, 1]) expect(gzipOneBlock(input, level).equals(await gzip(input, { level }, 1000))).toBe(true);
    }
    expect(() => gzipOneBlock(data.subarray(0, GZIP_BLOCK + 1))).toThrow(RangeError);
  });
});

describe('writeLayer', () => {
  const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

  async function tarOf(dir: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of layerTar(dir)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  // a small layer is compressed at once, a big one streamed: both must be the bytes of the stream
  test.each([
    ['a small tree (one block)', 3_000],
    ['a tree over one block', GZIP_BLOCK + 10_000],
  ])('%s: the blob is the streamed gzip of the layer tar, the diff_id its hash', async (_name, size) => {
    const dir = await tmpdir('wl-');
    const store = await ImageStore.open(path.join(dir, 'oci'));
    const tree = path.join(dir, 'tree');
    await fsp.mkdir(path.join(tree, 'd'), { recursive: true });
    await fsp.writeFile(path.join(tree, 'd', 'f'), randomBytes(size));
    await fsp.writeFile(path.join(tree, 'g'), 'hello\n');
    const tar = await tarOf(tree);
    for (const compression of ['gzip', 'none'] as const) {
      const w = await writeLayer(store.blobs, walkTree(tree, await readXattrsTree(tree), { overlay: false }), { compression });
      const blob = await fsp.readFile(store.blobs.path(w.descriptor.digest));
      expect(blob.equals(compression === 'gzip' ? await gzip(tar, {}) : tar)).toBe(true);
      expect([w.diffId, w.descriptor.digest, w.descriptor.size, w.uncompressedSize]).toEqual([sha(tar), sha(blob), blob.length, tar.length]);
    }
    expect(await fsp.readdir(path.join(dir, 'oci', 'tmp'))).toEqual([]);
  });
});

describe('walkTree', () => {
  test('a tree of more entries than it lists synchronously comes out complete and in order', async () => {
    const tree = await tmpdir('walk-');
    const expected: string[] = [];
    for (const d of ['b', 'a', 'c']) {
      await fsp.mkdir(path.join(tree, d));
      expected.push(d);
      for (let i = 0; i < 150; i++) {
        const name = `f${String(i).padStart(3, '0')}`;
        await fsp.writeFile(path.join(tree, d, name), '');
        expected.push(`${d}/${name}`);
      }
    }
    const counted = { entries: 0 };
    const got: string[] = [];
    for await (const e of walkTree(tree, new Map(), { overlay: false, counted })) if (e.kind === 'node') got.push(e.name);
    expect(got).toEqual([...expected].sort());
    expect(counted.entries).toBe(453);
  });
});

async function readAll(tar: Buffer): Promise<Array<Omit<TarHeader, 'xattrs'> & { xattrs: Record<string, string>; body: string }>> {
  const out = [];
  for await (const e of readTar(new ByteSource(Readable.from([tar]), Number.MAX_SAFE_INTEGER))) {
    const chunks: Buffer[] = [];
    for await (const b of e.body()) chunks.push(b);
    out.push({
      name: e.name,
      type: e.type,
      mode: e.mode,
      uid: e.uid,
      gid: e.gid,
      size: e.size,
      mtime: e.mtime,
      linkname: e.linkname,
      xattrs: Object.fromEntries([...e.xattrs].map(([k, v]) => [k, v.toString('hex')])),
      body: Buffer.concat(chunks).toString(),
    });
  }
  return out;
}

describe('tar format', () => {
  test('long names, big ids, binary xattrs round-trip through our reader and GNU tar', async () => {
    const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex');
    const longName = `${'a'.repeat(120)}/${'b'.repeat(120)}/${'ü'.repeat(30)}`;
    const h: TarHeader = { name: longName, type: 'file', mode: 0o4755, uid: 3_000_000, gid: 70_000, size: 3, mtime: 1_700_000_000, xattrs: new Map([['security.capability', cap]]) };
    const tar = Buffer.concat([encodeHeader(h), Buffer.from('abc'), Buffer.alloc(509), encodeHeader({ name: 'l', type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 1, linkname: 'x'.repeat(200) }), Buffer.alloc(1024)]);
    const got = await readAll(tar);
    expect(got[0]).toMatchObject({ name: longName, mode: 0o4755, uid: 3_000_000, gid: 70_000, body: 'abc', xattrs: { 'security.capability': cap.toString('hex') } });
    expect(got[1]).toMatchObject({ name: 'l', type: 'symlink', linkname: 'x'.repeat(200) });
    const dir = await tmpdir('fmt-');
    await fsp.writeFile(path.join(dir, 't.tar'), tar);
    const listing = sh(`tar --numeric-owner -tvf ${dir}/t.tar`);
    expect(listing).toContain('3000000/70000');
    expect(listing).toContain(longName);
    sh(`mkdir ${dir}/x && tar --xattrs --xattrs-include='*' -xpf ${dir}/t.tar -C ${dir}/x`);
    expect(sh(`getfattr -n security.capability -e hex --absolute-names '${dir}/x/${longName}'`)).toContain(cap.toString('hex'));
  });

  test('headers are normalised: no user/group names, no atime/ctime, mtimes clamped to SOURCE_DATE_EPOCH', async () => {
    const dir = await tmpdir('norm-');
    sh('mkdir -p d && echo x > d/f && touch -d @2000000000 d/f && touch -d @100 d', { cwd: dir });
    const chunks: Buffer[] = [];
    for await (const c of layerTar(dir, { sourceDateEpoch: 1_000_000_000 })) chunks.push(c as Buffer);
    const tar = Buffer.concat(chunks);
    const entries = await readAll(tar);
    expect(entries.map((e) => [e.name, e.mtime])).toEqual([
      ['d/', 100],
      ['d/f', 1_000_000_000],
    ]);
    // uname/gname fields (offsets 265 and 297) are empty in every header
    expect(tar.subarray(265, 265 + 64).every((b) => b === 0)).toBe(true);
    expect(tar.length % 512).toBe(0);
    expect(tar.subarray(-1024).every((b) => b === 0)).toBe(true);
  });
});
