import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { MediaType, sha256, type Descriptor, type Digest } from '@hoist/oci';
import { LayerChecker, Snapshotter, SnapshotError, encodeHeader, overlayOptions, volatileSupported, type Driver } from '@hoist/snapshotter';
import { describeTree, exists, normaliseLinks, openStore, sh, tmpdir, withMount } from './helpers.js';
import { HAS_ZSTD } from './helpers.js';

const EMPTY_LAYER = sha256(Buffer.alloc(1024));

/** A layer blob put straight into the store (uncompressed tar made with our encoder). */
async function putLayer(snaps: Snapshotter, files: Record<string, string>): Promise<{ diffId: Digest; descriptor: Descriptor }> {
  const parts: Buffer[] = [];
  for (const [name, content] of Object.entries(files)) {
    const body = Buffer.from(content);
    parts.push(encodeHeader({ name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: 1_600_000_000 }), body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  const tar = Buffer.concat(parts);
  const { digest, size } = await snaps.blobs.put(Readable.from([tar]));
  return { diffId: digest, descriptor: { mediaType: MediaType.OciLayer, digest, size } };
}

describe('Snapshotter (overlay)', () => {
  test('the overlay driver is chosen by default here (root, overlayfs available)', async () => {
    const { snaps } = await openStore();
    expect(snaps.driver).toBe('overlay');
  });

  test('an unchanged root commits as empty (the empty layer, 1024 zero bytes)', async () => {
    const { snaps } = await openStore();
    const r = await withMount(snaps, [], (m) => m.commit());
    expect(r.empty).toBe(true);
    expect(r.diffId).toBe(EMPTY_LAYER);
    // the empty layer is usable as a lower like any other
    await withMount(snaps, [r.diffId], async (m) => expect(await fsp.readdir(m.root)).toEqual([]));
  });

  test('commit keeps the upper dir as the snapshot: the next mount sees the change without unpacking', async () => {
    const { snaps } = await openStore();
    const r1 = await withMount(snaps, [], async (m) => {
      await fsp.mkdir(path.join(m.root, 'etc'));
      await fsp.writeFile(path.join(m.root, 'etc', 'a'), 'A');
      await fsp.writeFile(path.join(m.root, 'b'), 'B');
      return m.commit();
    });
    expect(r1.empty).toBe(false);
    const r2 = await withMount(snaps, [r1.diffId], async (m) => {
      expect(await fsp.readFile(path.join(m.root, 'etc', 'a'), 'utf8')).toBe('A');
      await fsp.rm(path.join(m.root, 'b'));
      return m.commit();
    });
    await withMount(snaps, [r1.diffId, r2.diffId], async (m) => {
      expect(await fsp.readdir(m.root)).toEqual(['etc']);
    });
    const listing = sh(`tar -tzf ${snaps.blobs.path(r2.descriptor.digest)}`);
    expect(listing).toBe('.wh.b\n');
  });

  test('release is idempotent, runs after commit, and a released mount cannot commit', async () => {
    const { snaps } = await openStore();
    const m = await snaps.mount([]);
    await m.release();
    await m.release();
    await expect(m.commit()).rejects.toMatchObject({ code: 'RELEASED' });
    expect(sh(`grep -c ${JSON.stringify(snaps.root)} /proc/self/mountinfo || true`).trim()).toBe('0');
    expect(snaps.activeMounts).toBe(0);
  });

  test('ensureLayer unpacks once, is idempotent and safe for concurrent callers', async () => {
    const { snaps } = await openStore();
    const l = await putLayer(snaps, { 'x/y': 'hello' });
    await Promise.all([1, 2, 3, 4, 5].map(() => snaps.ensureLayer(l)));
    // a second instance on the same root (another process, in effect) finds it
    const other = await Snapshotter.open({ root: snaps.root, blobs: snaps.blobs });
    await other.ensureLayer(l);
    expect(await fsp.readdir(path.join(snaps.root, 'snapshots'))).toEqual([l.diffId.slice(7)]);
    expect(await fsp.readdir(path.join(snaps.root, 'tmp'))).toEqual([]);
    await withMount(snaps, [l.diffId], async (m) => expect(await fsp.readFile(path.join(m.root, 'x', 'y'), 'utf8')).toBe('hello'));
  });

  test('ensureLayer rejects a blob whose content does not match the diff_id, leaving nothing behind', async () => {
    const { snaps } = await openStore();
    const l = await putLayer(snaps, { f: 'x' });
    const wrong = { diffId: sha256('not it'), descriptor: l.descriptor };
    await expect(snaps.ensureLayer(wrong)).rejects.toMatchObject({ code: 'DIFF_ID_MISMATCH' });
    expect(await snaps.has(wrong.diffId)).toBe(false);
    expect(await fsp.readdir(path.join(snaps.root, 'tmp'))).toEqual([]);
  });

  test('a corrupted blob is refused by its digest before anything is adopted', async () => {
    const { snaps } = await openStore();
    const l = await putLayer(snaps, { f: 'x'.repeat(5000) });
    const p = snaps.blobs.path(l.descriptor.digest);
    const data = await fsp.readFile(p);
    data[600] ^= 1;
    await fsp.chmod(p, 0o644);
    await fsp.writeFile(p, data);
    await expect(snaps.ensureLayer(l)).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
    expect(await snaps.has(l.diffId)).toBe(false);
    expect(await fsp.readdir(path.join(snaps.root, 'tmp'))).toEqual([]);
  });

  test('list and remove', async () => {
    const { snaps } = await openStore();
    const l = await putLayer(snaps, { f: 'x' });
    await snaps.ensureLayer(l);
    expect((await snaps.list()).map((r) => r.diffId)).toEqual([l.diffId]);
    expect(await snaps.remove(l.diffId)).toBe(true);
    expect(await snaps.remove(l.diffId)).toBe(false);
    expect(await snaps.has(l.diffId)).toBe(false); // forgotten, also by the records kept in memory
    expect(await snaps.list()).toEqual([]);
    expect(await fsp.readdir(path.join(snaps.root, 'l'))).toEqual([]);
    await snaps.ensureLayer(l); // and it can come back
    await withMount(snaps, [l.diffId], async (m) => expect(await fsp.readFile(path.join(m.root, 'f'), 'utf8')).toBe('x'));
  });

  test('mounting an unknown layer is a typed error and leaves no mount dir', async () => {
    const { snaps } = await openStore();
    await expect(snaps.mount([sha256('nope')])).rejects.toBeInstanceOf(SnapshotError);
    expect(await fsp.readdir(path.join(snaps.root, 'mounts'))).toEqual([]);
  });

  test('writable mounts are volatile (no syncfs of the disk at unmount) where the kernel has it; read-only views never', () => {
    expect(volatileSupported('5.9.16')).toBe(false);
    expect(volatileSupported('5.10.0-28-amd64')).toBe(true);
    expect(volatileSupported('6.1.0')).toBe(true);
    expect(volatileSupported('4.19.0')).toBe(false);
    expect(volatileSupported('garbage')).toBe(false);
    const rw = { cwd: '/', lowers: ['a', 'b'], upper: 'u', work: 'w', target: '/x' };
    expect(overlayOptions({ ...rw, volatile: true }).split(',')).toContain('volatile');
    expect(overlayOptions({ ...rw, volatile: false }).split(',')).not.toContain('volatile');
    expect(overlayOptions({ cwd: '/', lowers: ['a', 'b'], target: '/x', volatile: true }).split(',')).not.toContain('volatile');
    expect(overlayOptions({ ...rw, xattrs: 'user', volatile: true }).split(',')).toEqual(expect.arrayContaining(['userxattr', 'volatile']));
  });

  test('a volatile mount commits like any other and leaves neither its marker, a mount nor (once settled) its directory behind', async () => {
    const { snaps } = await openStore();
    const base = await putLayer(snaps, { keep: 'k' });
    await snaps.ensureLayer(base);
    let dir = '';
    const r = await withMount(snaps, [base.diffId], async (m) => {
      dir = m.dir;
      const opts = (await fsp.readFile('/proc/self/mountinfo', 'utf8')).split('\n').find((l) => l.includes(m.root)) ?? '';
      expect(opts.includes('volatile')).toBe(volatileSupported());
      await fsp.writeFile(path.join(m.root, 'new'), 'n');
      return m.commit();
    });
    // unmounted by the commit; its directory is removed in the background, gone once settled
    expect((await fsp.readFile('/proc/self/mountinfo', 'utf8')).includes(dir)).toBe(false);
    await snaps.settle();
    expect(await exists(dir)).toBe(false);
    expect(await fsp.readdir(path.join(snaps.root, 'mounts'))).toEqual([]);
    expect(snaps.activeMounts).toBe(0);
    const snap = path.join(snaps.root, 'snapshots', r.diffId.slice(7));
    expect((await fsp.readdir(snap)).sort()).toEqual(['diff', 'layer.json']);
    expect(await fsp.readdir(path.join(snap, 'diff'))).toEqual(['new']);
    await withMount(snaps, [base.diffId, r.diffId], async (m) => expect((await fsp.readdir(m.root)).sort()).toEqual(['keep', 'new']));
  });

  test('blobLater: commit answers before the blob is stored; blobStored/blobsStored wait for it; the next mount need not', async () => {
    const { snaps } = await openStore();
    const r = await withMount(snaps, [], async (m) => {
      await fsp.writeFile(path.join(m.root, 'f'), 'content');
      return m.commit({ blobLater: true });
    });
    // the snapshot is usable at once
    await withMount(snaps, [r.diffId], async (m) => expect(await fsp.readFile(path.join(m.root, 'f'), 'utf8')).toBe('content'));
    await snaps.blobStored(r.descriptor.digest);
    expect(await snaps.blobs.has(r.descriptor.digest)).toBe(true);
    expect(await snaps.blobs.verifiedDiffId(r.descriptor.digest)).toBe(r.diffId);
    await snaps.blobsStored();
    // without blobLater the blob is there when commit answers
    const r2 = await withMount(snaps, [], async (m) => {
      await fsp.writeFile(path.join(m.root, 'g'), 'other');
      return m.commit();
    });
    expect(await snaps.blobs.has(r2.descriptor.digest)).toBe(true);
  });

  test('blobLater: a blob that cannot be stored fails blobStored and blobsStored, and leaves no temp file', async () => {
    const { snaps } = await openStore();
    // the blob directory is a file: the rename into place fails
    await fsp.rm(snaps.blobs.blobsDir, { recursive: true, force: true });
    await fsp.writeFile(snaps.blobs.blobsDir, 'in the way');
    const r = await withMount(snaps, [], async (m) => {
      await fsp.writeFile(path.join(m.root, 'f'), 'content');
      return m.commit({ blobLater: true, sourceDateEpoch: 0 });
    });
    await expect(snaps.blobStored(r.descriptor.digest)).rejects.toThrow();
    await expect(snaps.blobsStored()).rejects.toThrow();
    await snaps.settle();
    const tmp = path.join(path.dirname(path.dirname(snaps.blobs.blobsDir)), 'tmp');
    expect((await fsp.readdir(tmp).catch(() => [])).filter((n) => n.startsWith('layer-'))).toEqual([]);
    // the failure does not stay: the same layer committed again, once the store works, supersedes it
    await fsp.rm(snaps.blobs.blobsDir);
    const again = await withMount(snaps, [], async (m) => {
      await fsp.writeFile(path.join(m.root, 'f'), 'content');
      return m.commit({ blobLater: true, sourceDateEpoch: 0 });
    });
    expect(again.descriptor.digest).toBe(r.descriptor.digest);
    await snaps.blobStored(r.descriptor.digest);
    await snaps.blobsStored();
    expect(await snaps.blobs.has(r.descriptor.digest)).toBe(true);
  });

  test('an image with 150 layers mounts (short relative lower names keep the options under a page)', async () => {
    const { snaps } = await openStore();
    const layers = [];
    for (let i = 0; i < 150; i++) layers.push(await putLayer(snaps, { [`layer-${String(i).padStart(3, '0')}`]: String(i), shared: String(i) }));
    for (const l of layers) await snaps.ensureLayer(l);
    const ids = layers.map((l) => l.diffId);
    const opts = overlayOptions({ cwd: '/', lowers: ids.map(() => 'abcdefgh'), upper: '../mounts/1234567-0123456789ab/upper', work: '../mounts/1234567-0123456789ab/work', target: '/x' });
    expect(opts.length).toBeLessThan(4096);
    await withMount(snaps, ids, async (m) => {
      expect((await fsp.readdir(m.root)).length).toBe(151);
      expect(await fsp.readFile(path.join(m.root, 'shared'), 'utf8')).toBe('149');
      expect(await fsp.readFile(path.join(m.root, 'layer-000'), 'utf8')).toBe('0');
      await fsp.writeFile(path.join(m.root, 'top'), 'top');
      const r = await m.commit();
      expect(sh(`tar -tzf ${snaps.blobs.path(r.descriptor.digest)}`)).toBe('top\n');
    });
    const out = await tmpdir('export-');
    await snaps.exportTree(ids, out);
    expect((await fsp.readdir(out)).length).toBe(151);
  });

  test('cleanupStale unmounts and removes what a crashed process left; live work is untouched', async () => {
    const { snaps } = await openStore();
    const dead = spawnSync('true').pid!; // a pid that has exited
    const stale = path.join(snaps.root, 'mounts', `${dead}-0123456789ab`);
    for (const d of ['upper', 'work', 'merged']) await fsp.mkdir(path.join(stale, d), { recursive: true });
    sh(`mount -t overlay overlay -o lowerdir=${snaps.root}/empty,upperdir=${stale}/upper,workdir=${stale}/work ${stale}/merged`);
    await fsp.writeFile(path.join(stale, 'merged', 'half-done'), 'x');
    const staleTmp = path.join(snaps.root, 'tmp', `layer-${dead}-abcdef012345`);
    await fsp.mkdir(path.join(staleTmp, 'diff'), { recursive: true });
    const live = await snaps.mount([]);
    try {
      const r = await snaps.cleanupStale();
      expect(r).toEqual({ unmounted: 1, removed: 2 });
      expect(await exists(stale)).toBe(false);
      expect(await exists(staleTmp)).toBe(false);
      await fsp.writeFile(path.join(live.root, 'still-works'), 'y');
      expect((await live.commit()).empty).toBe(false);
    } finally {
      await live.release();
      await snaps.settle();
    }
    // a fresh open also cleans up (it calls cleanupStale)
    await fsp.mkdir(path.join(snaps.root, 'mounts', `${dead}-ffffffffffff`));
    await Snapshotter.open({ root: snaps.root, blobs: snaps.blobs });
    expect(await fsp.readdir(path.join(snaps.root, 'mounts'))).toEqual([]);
  });

  test('a directory whose only change is metadata is in the layer, alone', async () => {
    const { snaps } = await openStore();
    const base = await withMount(snaps, [], async (m) => {
      sh('mkdir -p a/b && echo x > a/b/f && mkdir c', { cwd: m.root });
      return m.commit();
    });
    const r = await withMount(snaps, [base.diffId], async (m) => {
      sh('chmod 700 a/b && chown 3:4 c', { cwd: m.root });
      return m.commit();
    });
    expect(sh(`tar --numeric-owner -tvzf ${snaps.blobs.path(r.descriptor.digest)}`).split('\n').filter(Boolean).map((l) => l.split(/\s+/)).map((f) => [f[0], f[1], f[5]])).toEqual([
      ['drwxr-xr-x', '0/0', 'a/'],
      ['drwx------', '0/0', 'a/b/'],
      ['drwxr-xr-x', '3/4', 'c/'],
    ]);
  });

  test('a layer repeated in the chain (overlayfs refuses a lower twice) mounts with the same result', async () => {
    for (const driver of ['overlay', 'copy'] as const) {
      const { snaps } = await openStore(driver);
      const a = await putLayer(snaps, { f: 'a', g: 'a' });
      const b = await putLayer(snaps, { f: 'b', h: 'b' });
      for (const l of [a, b]) await snaps.ensureLayer(l);
      await withMount(snaps, [a.diffId, b.diffId, a.diffId], async (m) => {
        expect(await fsp.readFile(path.join(m.root, 'f'), 'utf8')).toBe('a');
        expect((await fsp.readdir(m.root)).sort()).toEqual(['f', 'g', 'h']);
      });
    }
  });

  test('a read-only view shows the chain without copying and releases cleanly', async () => {
    const { snaps } = await openStore();
    const l = await putLayer(snaps, { f: 'one' });
    await snaps.ensureLayer(l);
    const v = await snaps.view([l.diffId]);
    expect(await fsp.readFile(path.join(v.root, 'f'), 'utf8')).toBe('one');
    await expect(fsp.writeFile(path.join(v.root, 'g'), 'x')).rejects.toMatchObject({ code: 'EROFS' });
    await v.release();
    await v.release();
    expect(await fsp.readdir(path.join(snaps.root, 'mounts'))).toEqual([]);
  });

  (HAS_ZSTD ? test : test.skip)('zstd commits (via the zstd binary) round-trip', async () => {
    const { snaps } = await openStore();
    const r = await withMount(snaps, [], async (m) => {
      await fsp.writeFile(path.join(m.root, 'z'), 'zstd!'.repeat(1000));
      return m.commit({ compression: 'zstd' });
    });
    expect(r.descriptor.mediaType).toBe(MediaType.OciLayerZstd);
    const other = await Snapshotter.open({ root: path.join(await tmpdir('snaps-'), 's'), blobs: snaps.blobs });
    await other.ensureLayer(r);
    await withMount(other, [r.diffId], async (m) => expect(await fsp.readFile(path.join(m.root, 'z'), 'utf8')).toBe('zstd!'.repeat(1000)));
  });

  test('an aborted signal stops mount before anything is created', async () => {
    const { snaps } = await openStore();
    const ac = new AbortController();
    ac.abort();
    await expect(snaps.mount([], { signal: ac.signal })).rejects.toMatchObject({ code: 'ABORTED' });
    expect(await fsp.readdir(path.join(snaps.root, 'mounts'))).toEqual([]);
  });
});

/** The same step on both drivers: identical layers (SOURCE_DATE_EPOCH makes times equal). */
async function build(driver: Driver): Promise<{ digests: string[]; trees: unknown[] }> {
  const { snaps } = await openStore(driver);
  expect(snaps.driver).toBe(driver);
  const sde = 1_000_000_000;
  const r1 = await withMount(snaps, [], async (m) => {
    sh(
      [
        'mkdir -p etc/sub usr/bin var/empty-dir deldir/inner replace-me-dir',
        'echo hello > etc/hostname && echo a > etc/sub/a && echo b > deldir/inner/b && echo f > replace-me && echo d > replace-me-dir/x',
        'printf "#!/bin/sh\\n" > usr/bin/tool && chmod 4755 usr/bin/tool && chown 12:34 usr/bin/tool',
        'setfattr -n security.capability -v 0x0100000200200000000000000000000000000000 usr/bin/tool',
        'setfattr -n user.comment -v hi etc/hostname',
        'ln -s ../etc/hostname usr/hostname-link && ln etc/hostname etc/hostname-hard && mkfifo var/fifo && mknod var/null c 1 3',
        'chmod 1777 var/empty-dir',
      ].join(' && '),
      { cwd: m.root },
    );
    return m.commit({ sourceDateEpoch: sde });
  });
  const r2 = await withMount(snaps, [r1.diffId], async (m) => {
    sh(
      [
        'rm etc/hostname-hard && rm -r deldir && echo changed > etc/sub/a && chmod 700 etc/sub',
        'rm replace-me && mkdir replace-me && echo in > replace-me/x',
        'rm -r replace-me-dir && echo now-a-file > replace-me-dir',
        'setfattr -x user.comment etc/hostname',
        `mkdir -p ${'n'.repeat(120)}/${'m'.repeat(120)} && echo long > ${'n'.repeat(120)}/${'m'.repeat(120)}/${'o'.repeat(100)}`,
      ].join(' && '),
      { cwd: m.root },
    );
    return m.commit({ sourceDateEpoch: sde });
  });
  const out = await tmpdir('export-');
  await snaps.exportTree([r1.diffId, r2.diffId], out);
  return { digests: [r1.diffId, r1.descriptor.digest, r2.diffId, r2.descriptor.digest], trees: [normaliseLinks(await describeTree(out))] };
}

describe('copy driver', () => {
  test('produces byte-identical layers to overlay for the same change, and the same tree', async () => {
    const overlay = await build('overlay');
    const copy = await build('copy');
    expect(copy.digests).toEqual(overlay.digests);
    expect(copy.trees).toEqual(overlay.trees);
  });

  test('layers are reproducible across stores with SOURCE_DATE_EPOCH (two machines, same build)', async () => {
    const a = await build('overlay');
    const b = await build('overlay');
    expect(b.digests).toEqual(a.digests);
  });

  test('copy driver: ensureLayer, mount, commit and empty commits', async () => {
    const { snaps } = await openStore('copy');
    const l = await putLayer(snaps, { 'a/b': 'hello' });
    await snaps.ensureLayer(l);
    const r = await withMount(snaps, [l.diffId], async (m) => {
      expect(await fsp.readFile(path.join(m.root, 'a', 'b'), 'utf8')).toBe('hello');
      return m.commit();
    });
    expect(r.empty).toBe(true);
    const r2 = await withMount(snaps, [l.diffId], async (m) => {
      await fsp.writeFile(path.join(m.root, 'a', 'c'), 'c');
      return m.commit();
    });
    expect(sh(`tar -tzf ${snaps.blobs.path(r2.descriptor.digest)}`)).toBe('a/\na/c\n');
    await withMount(snaps, [l.diffId, r2.diffId], async (m) => expect((await fsp.readdir(path.join(m.root, 'a'))).sort()).toEqual(['b', 'c']));
  });
});

describe('a base layer unpacked while it downloads (issue 16)', () => {
  /**
   * A fetch as a registry download does it with a LayerChecker made with the snapshotter: the
   * bytes go through the check (in chunks), then the blob is put into the store.
   */
  function downloading(snaps: Snapshotter, blob: Buffer, layer: { diffId: Digest; descriptor: Descriptor }, o: { restartAfter?: number } = {}) {
    const checks = new LayerChecker(snaps.blobs, {}, snaps);
    return async (): Promise<void> => {
      if (o.restartAfter !== undefined) {
        const first = checks.begin(layer.descriptor, layer.diffId);
        await first.write(blob.subarray(0, o.restartAfter));
        first.abort(); // the transfer restarted
      }
      const check = checks.begin(layer.descriptor, layer.diffId);
      for (let i = 0; i < blob.length; i += 100) await check.write(blob.subarray(i, i + 100));
      await check.end();
      await snaps.blobs.put(Readable.from([blob]), { expected: { digest: layer.descriptor.digest, size: layer.descriptor.size } });
    };
  }

  function tarOf(files: Record<string, string>): Buffer {
    const parts: Buffer[] = [];
    for (const [name, content] of Object.entries(files)) {
      const body = Buffer.from(content);
      parts.push(encodeHeader({ name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: 1_600_000_000 }), body, Buffer.alloc((512 - (body.length % 512)) % 512));
    }
    return Buffer.concat([...parts, Buffer.alloc(1024)]);
  }

  /** Counts reads of blobs from the store while `fn` runs. */
  async function countingReads<T>(snaps: Snapshotter, fn: () => Promise<T>): Promise<{ result: T; reads: number }> {
    const blobs = snaps.blobs as unknown as { get: (...a: unknown[]) => unknown };
    const orig = blobs.get;
    let reads = 0;
    blobs.get = (...a: unknown[]) => (reads++, orig.apply(snaps.blobs, a));
    try {
      return { result: await fn(), reads };
    } finally {
      blobs.get = orig;
    }
  }

  test('the download check unpacks the snapshot; the stored blob is not read again', async () => {
    const { snaps } = await openStore();
    const tar = tarOf({ 'a.txt': 'A', 'b.txt': 'B' });
    const blob = gzipSync(tar);
    const layer = { diffId: sha256(tar), descriptor: { mediaType: MediaType.OciLayerGzip, digest: sha256(blob), size: blob.length } };
    const { reads } = await countingReads(snaps, () => snaps.ensureLayer({ ...layer, fetch: downloading(snaps, blob, layer, { restartAfter: 50 }) }));
    expect(reads).toBe(0);
    expect(await snaps.has(layer.diffId)).toBe(true);
    expect(await snaps.blobs.has(layer.descriptor.digest)).toBe(true);
    expect(await snaps.blobs.verifiedDiffId(layer.descriptor.digest)).toBe(layer.diffId);
    await withMount(snaps, [layer.diffId], async (m) => expect(await fsp.readFile(path.join(m.root, 'b.txt'), 'utf8')).toBe('B'));
    // nothing left in tmp/ by the aborted first attempt or the adopted one
    expect(await fsp.readdir(path.join(snaps.root, 'tmp')).catch(() => [])).toEqual([]);
  });

  test('a download whose content does not match its diff_id leaves no snapshot', async () => {
    const { snaps } = await openStore();
    const blob = gzipSync(tarOf({ 'a.txt': 'A' }));
    const layer = { diffId: sha256(Buffer.from('another tar')), descriptor: { mediaType: MediaType.OciLayerGzip, digest: sha256(blob), size: blob.length } };
    const e = await snaps.ensureLayer({ ...layer, fetch: downloading(snaps, blob, layer) }).catch((x: unknown) => x);
    expect((e as SnapshotError).code).toBe('DIFF_ID_MISMATCH');
    expect(await snaps.has(layer.diffId)).toBe(false);
    expect(await snaps.blobs.has(layer.descriptor.digest)).toBe(false);
  });

  test('a download nobody is unpacking is only checked', async () => {
    const { snaps } = await openStore();
    const tar = tarOf({ 'c.txt': 'C' });
    const blob = gzipSync(tar);
    const layer = { diffId: sha256(tar), descriptor: { mediaType: MediaType.OciLayerGzip, digest: sha256(blob), size: blob.length } };
    await downloading(snaps, blob, layer)();
    expect(await snaps.has(layer.diffId)).toBe(false);
    expect(await snaps.blobs.verifiedDiffId(layer.descriptor.digest)).toBe(layer.diffId);
  });
});
