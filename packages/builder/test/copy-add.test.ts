/**
 * COPY/ADD against the image's own symlinks, ADD --chown of local archives, cache mount keys,
 * and COPY/ADD errors that must name paths as the image sees them (issue 15, part B).
 */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BuildError, collectSources } from '@hoist/builder';
import { encodeHeader } from '@hoist/snapshotter';
import { copyInto, mkdirs } from '../src/copy.js';
import { unpackArchive } from '../src/archive.js';
import { CacheMounts, cacheMountKey } from '../src/cache-mounts.js';
import { copyPathViews, copyStepError, hideHostPaths } from '../src/host-paths.js';

let dir: string;
beforeAll(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hoist-copy-add-'));
});
afterAll(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

/** A fresh root (a stand-in for a mounted image) inside its own sandbox directory. */
async function sandboxRoot(name: string): Promise<{ sandbox: string; root: string }> {
  const sandbox = path.join(dir, name);
  const root = path.join(sandbox, 'root');
  await fsp.mkdir(root, { recursive: true });
  return { sandbox, root };
}

type Member = { name: string; type: 'file' | 'dir' | 'symlink' | 'link'; body?: string; linkname?: string; uid?: number; gid?: number };

async function writeTar(file: string, members: Member[]): Promise<string> {
  const parts: Buffer[] = [];
  for (const m of members) {
    const body = Buffer.from(m.body ?? '');
    const h = { name: m.name, type: m.type, mode: m.type === 'dir' ? 0o755 : 0o644, uid: m.uid ?? 0, gid: m.gid ?? 0, size: body.length, mtime: 1000 };
    parts.push(encodeHeader(m.linkname !== undefined ? { ...h, linkname: m.linkname } : h));
    if (body.length > 0) parts.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  await fsp.writeFile(file, Buffer.concat(parts));
  return file;
}

async function owner(p: string): Promise<[number, number]> {
  const st = await fsp.lstat(p);
  return [st.uid, st.gid];
}

describe('one COPY whose sources replace each other: a directory, a symlink, a directory again', () => {
  it('each replaces the last; nothing is written through the symlink, inside the root or out', async () => {
    const { sandbox, root } = await sandboxRoot('relink');
    const ctx = path.join(sandbox, 'ctx');
    await fsp.mkdir(path.join(ctx, 'one', 'a'), { recursive: true });
    await fsp.writeFile(path.join(ctx, 'one', 'a', 'x'), 'x\n');
    await fsp.mkdir(path.join(ctx, 'two'));
    await fsp.symlink('/outside-h23', path.join(ctx, 'two', 'a'));
    await fsp.mkdir(path.join(ctx, 'three', 'a'), { recursive: true });
    await fsp.writeFile(path.join(ctx, 'three', 'a', 'y'), 'y\n');
    await copyInto(root, await collectSources(ctx, ['one', 'two', 'three']), { dest: '/dst/', createdTime: 1234 });
    expect((await fsp.lstat(path.join(root, 'dst', 'a'))).isDirectory()).toBe(true);
    expect(await fsp.readdir(path.join(root, 'dst', 'a'))).toEqual(['y']);
    expect(await fsp.readdir(root)).toEqual(['dst']);
    await expect(fsp.lstat('/outside-h23')).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('COPY into a dangling symlink of the image', () => {
  it("creates the missing parents of the link's target inside the root", async () => {
    const { sandbox, root } = await sandboxRoot('dangling');
    await fsp.symlink('/nodir-h6/target', path.join(root, 'link'));
    const ctx = path.join(sandbox, 'ctx');
    await fsp.mkdir(ctx);
    await fsp.writeFile(path.join(ctx, 'foo'), 'foo\n');
    await copyInto(root, await collectSources(ctx, ['foo']), { dest: '/link/', createdTime: 1234 });
    expect(await fsp.readFile(path.join(root, 'nodir-h6', 'target', 'foo'), 'utf8')).toBe('foo\n');
    expect(await fsp.readlink(path.join(root, 'link'))).toBe('/nodir-h6/target');
    for (const d of ['nodir-h6', 'nodir-h6/target']) {
      const st = await fsp.stat(path.join(root, d));
      expect([d, st.mode & 0o7777, st.uid, st.gid]).toEqual([d, 0o755, 0, 0]);
    }
    await expect(fsp.lstat('/nodir-h6')).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await fsp.readdir(sandbox)).sort()).toEqual(['ctx', 'root']);
  });

  it('names a non-directory on the way as the image sees it', async () => {
    const { root } = await sandboxRoot('not-a-dir');
    await fsp.writeFile(path.join(root, 'file'), 'x');
    await fsp.symlink('/file/sub', path.join(root, 'link'));
    const e = await mkdirs(root, '/link/deeper', { owner: { uid: 0, gid: 0 }, mtime: 1 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BuildError);
    expect((e as BuildError).message).toBe('cannot copy to /link/deeper: /file exists in the image and is not a directory');
  });
});

describe('ADD of a local archive', () => {
  it("extracts through an absolute symlink of the image (var/run -> /run) to its target inside the root", async () => {
    const { sandbox, root } = await sandboxRoot('through-link');
    await fsp.mkdir(path.join(root, 'run'));
    await fsp.mkdir(path.join(root, 'var'));
    await fsp.symlink('/run', path.join(root, 'var', 'run'));
    const archive = await writeTar(path.join(sandbox, 't.tar'), [
      { name: 'var/run/app', type: 'dir' },
      { name: 'var/run/app/x.txt', type: 'file', body: 'x\n' },
      { name: 'var/run/app/x.link', type: 'link', linkname: 'var/run/app/x.txt' },
    ]);
    await unpackArchive({ root, archive, kind: 'tar', dest: '/', createdTime: 1 });
    expect(await fsp.readFile(path.join(root, 'run', 'app', 'x.txt'), 'utf8')).toBe('x\n');
    expect((await fsp.stat(path.join(root, 'run', 'app', 'x.link'))).nlink).toBe(2);
    expect(await fsp.readlink(path.join(root, 'var', 'run'))).toBe('/run');
  });

  it('re-roots a symlink the archive plants at the destination; refuses ../ members', async () => {
    const { sandbox, root } = await sandboxRoot('planted');
    const planted = await writeTar(path.join(sandbox, 'planted.tar'), [
      { name: 'etc', type: 'dir' },
      { name: 'evil', type: 'symlink', linkname: '/etc' },
      { name: 'evil/pwned', type: 'file', body: 'pwned\n' },
    ]);
    await unpackArchive({ root, archive: planted, kind: 'tar', dest: '/out/', createdTime: 1 });
    expect(await fsp.readFile(path.join(root, 'out', 'etc', 'pwned'), 'utf8')).toBe('pwned\n');
    await expect(fsp.lstat(path.join(root, 'etc'))).rejects.toMatchObject({ code: 'ENOENT' });
    const escape = await writeTar(path.join(sandbox, 'escape.tar'), [{ name: '../../escaped', type: 'file', body: 'no\n' }]);
    const e = await unpackArchive({ root, archive: escape, kind: 'tar', dest: '/out/', createdTime: 1 }).catch((x: unknown) => x);
    expect((e as BuildError).code).toBe('STEP_FAILED');
    expect((e as BuildError).message).toContain('escapes the root');
    expect((await fsp.readdir(sandbox)).sort()).toEqual(['escape.tar', 'planted.tar', 'root']);
  });

  it('--chown owns the destination directories it creates and every member; an existing destination keeps its owner', async () => {
    const { sandbox, root } = await sandboxRoot('chown');
    const archive = await writeTar(path.join(sandbox, 't.tar'), [
      { name: 'foo', type: 'file', body: 'content0', uid: 1, gid: 2 },
      { name: 'd', type: 'dir', uid: 1, gid: 2 },
      { name: 'd/inner', type: 'file', body: 'inner', uid: 1, gid: 2 },
      { name: 'lnk', type: 'symlink', linkname: 'foo', uid: 1, gid: 2 },
    ]);
    await unpackArchive({ root, archive, kind: 'tar', dest: '/a/b/', owner: { uid: 100, gid: 200 }, createdTime: 1 });
    for (const p of ['a', 'a/b', 'a/b/foo', 'a/b/d', 'a/b/d/inner', 'a/b/lnk']) expect([p, ...(await owner(path.join(root, p)))]).toEqual([p, 100, 200]);
    await fsp.mkdir(path.join(root, 'existing'));
    await unpackArchive({ root, archive, kind: 'tar', dest: '/existing/', owner: { uid: 7, gid: 8 }, createdTime: 1 });
    expect(await owner(path.join(root, 'existing'))).toEqual([0, 0]);
    expect(await owner(path.join(root, 'existing', 'foo'))).toEqual([7, 8]);
    await unpackArchive({ root, archive, kind: 'tar', dest: '/plain/', createdTime: 1 });
    expect(await owner(path.join(root, 'plain'))).toEqual([0, 0]);
    expect(await owner(path.join(root, 'plain', 'foo'))).toEqual([1, 2]);
  });
});

describe('cache mount keys', () => {
  it('are the id for a plain cache, and differ with uid/gid/mode or a seed (BuildKit: id + source ref)', () => {
    expect(cacheMountKey('/c', {})).toBe('/c');
    const owned = cacheMountKey('/c', { uid: 1001, gid: 1002, mode: 0o751 });
    expect(owned).not.toBe('/c');
    expect(cacheMountKey('/c', { uid: 1001, gid: 1002, mode: 0o751 })).toBe(owned);
    // BuildKit fills in 0, 0, 0755 for what is not given: these describe the same directory
    expect(cacheMountKey('/c', { uid: 0 })).toBe(cacheMountKey('/c', { mode: 0o755 }));
    expect(cacheMountKey('/c', { uid: 0 })).not.toBe('/c');
    expect(cacheMountKey('/c', { from: 'stage:a' })).not.toBe(cacheMountKey('/c', { from: 'stage:b' }));
  });

  it('give a cache used before without uid/gid/mode a fresh directory with them', async () => {
    const store = path.join(dir, 'store');
    const caches = new CacheMounts(store, path.join(store, 'tmp'));
    const plain = await caches.acquire(cacheMountKey('/c', {}), { sharing: 'shared' });
    await fsp.writeFile(path.join(plain.source, 'from-plain'), '');
    await plain.release();
    const perms = { uid: 1001, gid: 1002, mode: 0o751 };
    const owned = await caches.acquire(cacheMountKey('/c', perms), { sharing: 'shared', ...perms });
    const st = await fsp.stat(owned.source);
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([1001, 1002, 0o751]);
    expect(await fsp.readdir(owned.source)).toEqual([]);
    await owned.release();
    const again = await caches.acquire(cacheMountKey('/c', {}), { sharing: 'shared' });
    expect(await fsp.readdir(again.source)).toEqual(['from-plain']);
    await again.release();
  });
});

describe('COPY/ADD errors name paths as the image sees them', () => {
  it('rewrites a raw fs error below the mounted root, and store paths', async () => {
    const { root } = await sandboxRoot('errors');
    const raw = await fsp.mkdir(path.join(root, 'nodir', 'target')).catch((x: unknown) => x as Error);
    const store = path.dirname(path.dirname(root));
    const e = copyStepError(raw, copyPathViews(store, [root]));
    expect(e).toBeInstanceOf(BuildError);
    expect(e.code).toBe('STEP_FAILED');
    expect(e.message).toBe("ENOENT: no such file or directory, mkdir '/nodir/target'");
    expect(hideHostPaths(`open '${store}/tmp/heredoc-1/x' and '${root}'`, copyPathViews(store, [root]))).toBe("open '<store>/tmp/heredoc-1/x' and '/'");
  });

  it('keeps the code of a typed error', () => {
    const e = copyStepError(new BuildError('COPY_SOURCE_NOT_FOUND', 'cannot copy to /x: /r/m/x exists'), copyPathViews('/r', ['/r/m']));
    expect([e.code, e.message]).toEqual(['COPY_SOURCE_NOT_FOUND', 'cannot copy to /x: /x exists']);
  });
});
