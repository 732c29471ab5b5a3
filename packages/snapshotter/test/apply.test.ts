import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { applyLayer, SnapshotError, type SnapshotErrorCode } from '@hoist/snapshotter';
import { FIXTURES, HOSTILE_LAYERS, exists, sh, tmpdir } from './helpers.js';
import { HAS_ZSTD } from './helpers.js';

/** Apply a fixture into <sandbox>/root; return the sandbox (to check nothing appeared beside root). */
async function applyFixture(name: string, opts: Parameters<typeof applyLayer>[2] = {}): Promise<{ sandbox: string; root: string; error?: unknown }> {
  const sandbox = await tmpdir('apply-');
  const root = path.join(sandbox, 'root');
  await fsp.mkdir(root);
  try {
    await applyLayer(createReadStream(path.join(FIXTURES, name)), root, opts);
    return { sandbox, root };
  } catch (error) {
    return { sandbox, root, error };
  }
}

// the hostile layers aim at these fixed paths (fixtures/layers/make-fixtures.mjs): the tests that
// check them make /tmp/hoist-evil-dir, and nothing is left there after the file
afterAll(async () => {
  await fsp.rm('/tmp/hoist-evil-dir', { recursive: true, force: true });
  await fsp.rm('/tmp/hoist-evil-absolute', { force: true });
});

describe('applyLayer on hostile layers', () => {
  beforeAll(async () => {
    await fsp.rm('/tmp/hoist-evil-dir', { recursive: true, force: true });
    await fsp.rm('/tmp/hoist-evil-absolute', { force: true });
    await fsp.mkdir('/tmp/hoist-evil-dir');
  });

  for (const mode of ['flat', 'overlay'] as const) {
    test.each(HOSTILE_LAYERS)(`${mode}: %s is rejected with %s and nothing outside the root is touched`, async (name, code) => {
      const { sandbox, error } = await applyFixture(name, { whiteouts: mode });
      expect(error).toBeInstanceOf(SnapshotError);
      expect((error as SnapshotError).code).toBe(code);
      expect(await fsp.readdir(sandbox)).toEqual(['root']);
      expect(await fsp.readdir('/tmp/hoist-evil-dir')).toEqual([]);
      expect(await exists('/tmp/hoist-evil-absolute')).toBe(false);
      expect(await exists(path.join(path.dirname(sandbox), 'escaped'))).toBe(false);
    });
  }

  test('a gzip bomb stops at the configured limit', async () => {
    const { error, root } = await applyFixture('bomb.tar.gz', { maxBytes: 1024 * 1024 });
    expect((error as SnapshotError).code).toBe('LAYER_TOO_LARGE');
    const st = await fsp.stat(path.join(root, 'zeros')).catch(() => undefined);
    expect(st === undefined || st.size <= 2 * 1024 * 1024).toBe(true);
  });

  test('the same bomb unpacks under a larger limit (the limit is what stops it)', async () => {
    const { error, root } = await applyFixture('bomb.tar.gz', { maxBytes: 128 * 1024 * 1024 });
    expect(error).toBeUndefined();
    expect((await fsp.stat(path.join(root, 'zeros'))).size).toBe(64 * 1024 * 1024);
  });

  test('overlay xattrs inside a layer are dropped; content xattrs kept', async () => {
    const { error, root } = await applyFixture('overlay-xattr.tar', { whiteouts: 'overlay' });
    expect(error).toBeUndefined();
    const x = sh(`getfattr -d -m - -e text --absolute-names ${root}/d`);
    expect(x).toContain('user.ok="yes"');
    expect(x).not.toContain('trusted.overlay');
  });

  test('a wrong diff_id is reported as DIFF_ID_MISMATCH', async () => {
    const { error } = await applyFixture('benign.tar', { diffId: `sha256:${'0'.repeat(64)}` as never });
    expect((error as SnapshotError).code).toBe('DIFF_ID_MISMATCH');
  });
});

describe('applyLayer on benign layers', () => {
  test('flat: whiteouts delete lower content, opaque dirs clear it; modes, links and xattrs land', async () => {
    const sandbox = await tmpdir('apply-');
    const root = path.join(sandbox, 'root');
    await fsp.mkdir(path.join(root, 'dir'), { recursive: true });
    await fsp.writeFile(path.join(root, 'dir', 'lower-file'), 'old');
    await fsp.writeFile(path.join(root, 'gone'), 'old');
    await fsp.writeFile(path.join(root, 'kept'), 'old');
    const r = await applyLayer(createReadStream(path.join(FIXTURES, 'benign.tar')), root);
    expect(r.diffId).toBe(`sha256:${sh(`sha256sum ${FIXTURES}/benign.tar`).split(' ')[0]}`);
    expect((await fsp.readdir(root)).sort()).toEqual(['dir', 'kept', 'sticky']);
    expect((await fsp.readdir(path.join(root, 'dir'))).sort()).toEqual(['hard', `${'long-name-'.repeat(20)}end`, 'ping']);
    const ping = await fsp.stat(path.join(root, 'dir', 'ping'));
    expect(ping.mode & 0o7777).toBe(0o4755);
    expect(ping.nlink).toBe(2);
    expect(sh(`getfattr -n security.capability -e hex --absolute-names ${root}/dir/ping`)).toContain('0x0100000200200000000000000000000000000000');
    const sticky = await fsp.stat(path.join(root, 'sticky'));
    expect([sticky.mode & 0o7777, sticky.uid, sticky.gid]).toEqual([0o1777, 1000, 1000]);
  });

  test('overlay: whiteouts become 0/0 char devices and opaque dirs get trusted.overlay.opaque', async () => {
    const { error, root } = await applyFixture('benign.tar', { whiteouts: 'overlay' });
    expect(error).toBeUndefined();
    const wh = await fsp.lstat(path.join(root, 'gone'));
    expect(wh.isCharacterDevice() && wh.rdev === 0).toBe(true);
    expect(sh(`getfattr -n trusted.overlay.opaque --absolute-names ${root}/dir`)).toContain('trusted.overlay.opaque="y"');
  });

  test('GNU tar output (long names, hard links, fifos, devices, xattrs) unpacks exactly', async () => {
    const src = await tmpdir('gnu-');
    sh(`mkdir -p a/${'deep/'.repeat(40)} && echo hi > a/${'deep/'.repeat(40)}f && ln a/${'deep/'.repeat(40)}f hl && mkfifo p && mknod c c 1 3 && echo x > cap && setfattr -n security.capability -v 0x0100000200200000000000000000000000000000 cap && chmod 2755 cap && chown 7:8 cap && ln -s ${'t'.repeat(150)} longlink`, { cwd: src });
    const tarDir = await tmpdir('gnu-tar-');
    sh(`tar --xattrs --xattrs-include='*' -cf ${tarDir}/gnu.tar .`, { cwd: src });
    const root = await tmpdir('gnu-out-');
    await applyLayer(createReadStream(path.join(tarDir, 'gnu.tar')), root);
    const { describeTree, normaliseLinks } = await import('./helpers.js');
    expect(normaliseLinks(await describeTree(root))).toEqual(normaliseLinks(await describeTree(src)));
  });

  (HAS_ZSTD ? test : test.skip)('zstd layers (detected from the magic) unpack and verify like gzip ones', async () => {
    const dir = await tmpdir('zstd-');
    sh(`zstd -q -c ${FIXTURES}/benign.tar > ${dir}/l.tar.zst`);
    const root = path.join(dir, 'root');
    await fsp.mkdir(root);
    const diffId = `sha256:${sh(`sha256sum ${FIXTURES}/benign.tar`).split(' ')[0]}` as never;
    const r = await applyLayer(createReadStream(path.join(dir, 'l.tar.zst')), root, { diffId });
    expect(r.diffId).toBe(diffId);
    expect((await fsp.readdir(root)).sort()).toEqual(['dir', 'sticky']);
  });

  test('flat: a later layer writing through an in-root relative symlink lands inside the root', async () => {
    const sandbox = await tmpdir('apply-');
    const root = path.join(sandbox, 'root');
    await fsp.mkdir(path.join(root, 'usr', 'lib'), { recursive: true });
    await fsp.symlink('usr/lib', path.join(root, 'lib'));
    const { encodeHeader } = await import('@hoist/snapshotter');
    const body = Buffer.from('so\n');
    const tar = Buffer.concat([encodeHeader({ name: 'lib/libx.so', type: 'file', mode: 0o755, uid: 0, gid: 0, size: body.length, mtime: 1 }), body, Buffer.alloc(512 - body.length), Buffer.alloc(1024)]);
    const { Readable } = await import('node:stream');
    await applyLayer(Readable.from([tar]), root);
    expect(await fsp.readFile(path.join(root, 'usr', 'lib', 'libx.so'), 'utf8')).toBe('so\n');
    expect((await fsp.lstat(path.join(root, 'lib'))).isSymbolicLink()).toBe(true);
    expect(await fsp.readdir(sandbox)).toEqual(['root']);
  });
});


/** A tar of these members (bodies for files), made with the snapshotter's own header encoder. */
async function tarOf(members: Array<{ name: string; type: 'file' | 'dir' | 'symlink' | 'link'; body?: string; linkname?: string; mode?: number; uid?: number; gid?: number }>): Promise<Buffer> {
  const { encodeHeader } = await import('@hoist/snapshotter');
  const parts: Buffer[] = [];
  for (const m of members) {
    const body = Buffer.from(m.body ?? '');
    const h = { name: m.name, type: m.type, mode: m.mode ?? (m.type === 'dir' ? 0o755 : 0o644), uid: m.uid ?? 0, gid: m.gid ?? 0, size: body.length, mtime: 1000 };
    parts.push(encodeHeader(m.linkname !== undefined ? { ...h, linkname: m.linkname } : h));
    if (body.length > 0) parts.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

async function applyBuffer(tar: Buffer, root: string, opts: Parameters<typeof applyLayer>[2]): Promise<unknown> {
  const { Readable } = await import('node:stream');
  return applyLayer(Readable.from([tar]), root, opts).then(
    () => undefined,
    (e: unknown) => e,
  );
}

describe('applyLayer with absoluteSymlinks: reroot (ADD of a local archive)', () => {
  beforeAll(async () => {
    await fsp.rm('/tmp/hoist-evil-dir', { recursive: true, force: true });
    await fsp.mkdir('/tmp/hoist-evil-dir');
  });

  // what changes under reroot: an absolute link is followed from the root, so the write lands inside
  const rerooted: Record<string, SnapshotErrorCode | 'ok'> = { 'symlink-absolute.tar': 'ok', 'hardlink-via-symlink.tar': 'LAYER_INVALID' };
  test.each(HOSTILE_LAYERS.map(([name, code]) => [name, rerooted[name] ?? code] as const))('%s: %s, and nothing outside the root is touched', async (name, want) => {
    const { sandbox, root, error } = await applyFixture(name, { absoluteSymlinks: 'reroot' });
    if (want === 'ok') expect(error).toBeUndefined();
    else expect((error as SnapshotError).code).toBe(want);
    expect(await fsp.readdir(sandbox)).toEqual(['root']);
    expect(await fsp.readdir('/tmp/hoist-evil-dir')).toEqual([]);
    expect(await exists('/tmp/hoist-evil-absolute')).toBe(false);
    expect(await exists(path.join(path.dirname(sandbox), 'escaped'))).toBe(false);
    if (name === 'symlink-absolute.tar') expect(await fsp.readFile(path.join(root, 'tmp', 'hoist-evil-dir', 'pwned'), 'utf8')).toBe('pwned\n');
  });

  test("members below an absolute symlink of the tree (Debian's var/run -> /run) land at its target inside the root, hard links too", async () => {
    const sandbox = await tmpdir('apply-');
    const root = path.join(sandbox, 'root');
    await fsp.mkdir(path.join(root, 'run'), { recursive: true });
    await fsp.mkdir(path.join(root, 'var'));
    await fsp.symlink('/run', path.join(root, 'var', 'run'));
    const tar = await tarOf([
      { name: 'var/run/app', type: 'dir' },
      { name: 'var/run/app/x.txt', type: 'file', body: 'x\n' },
      { name: 'var/run/app/x.link', type: 'link', linkname: 'var/run/app/x.txt' },
    ]);
    expect(await applyBuffer(tar, root, { absoluteSymlinks: 'reroot' })).toBeUndefined();
    expect(await fsp.readFile(path.join(root, 'run', 'app', 'x.txt'), 'utf8')).toBe('x\n');
    expect((await fsp.stat(path.join(root, 'run', 'app', 'x.link'))).nlink).toBe(2);
    expect(await fsp.readlink(path.join(root, 'var', 'run'))).toBe('/run');
    expect(await fsp.readdir(sandbox)).toEqual(['root']);
    // the default (image layers) still refuses to write through it
    const refused = await applyBuffer(tar, root, {});
    expect((refused as SnapshotError).code).toBe('LAYER_UNSAFE_PATH');
  });

  test('a relative link climbing out of the root is still refused', async () => {
    const sandbox = await tmpdir('apply-');
    const root = path.join(sandbox, 'root');
    await fsp.mkdir(root);
    const tar = await tarOf([{ name: 'up', type: 'symlink', linkname: '../..' }, { name: 'up/escaped', type: 'file', body: 'no\n' }]);
    const e = await applyBuffer(tar, root, { absoluteSymlinks: 'reroot' });
    expect((e as SnapshotError).code).toBe('LAYER_UNSAFE_PATH');
    expect(await fsp.readdir(sandbox)).toEqual(['root']);
    expect(await exists(path.join(path.dirname(sandbox), 'escaped'))).toBe(false);
  });
});

describe('applyLayer with an owner (ADD --chown)', () => {
  test("every member takes the owner instead of the archive's; modes stay", async () => {
    const root = await tmpdir('apply-owner-');
    const tar = await tarOf([
      { name: 'd', type: 'dir', uid: 1, gid: 2, mode: 0o750 },
      { name: 'd/f', type: 'file', body: 'f\n', uid: 1, gid: 2, mode: 0o4755 },
      { name: 'd/h', type: 'link', linkname: 'd/f' },
      { name: 'l', type: 'symlink', linkname: 'd/f', uid: 3, gid: 4 },
    ]);
    expect(await applyBuffer(tar, root, { owner: { uid: 100, gid: 200 } })).toBeUndefined();
    for (const p of ['d', 'd/f', 'd/h', 'l']) {
      const st = await fsp.lstat(path.join(root, p));
      expect([p, st.uid, st.gid]).toEqual([p, 100, 200]);
    }
    expect((await fsp.stat(path.join(root, 'd'))).mode & 0o7777).toBe(0o750);
    expect((await fsp.stat(path.join(root, 'd', 'f'))).mode & 0o7777).toBe(0o4755);
  });
});
