import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { applyChmod, cacheKey, collectSources, digestSources, generateSpec, resolveChown, resolveUser, secureJoin, applyConfig, DEFAULT_CAPABILITIES } from '@hoist/builder';

let dir: string;
beforeAll(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hoist-builder-unit-'));
});
afterAll(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

describe('applyChmod', () => {
  it.each([
    [0o644, '755', false, 0o755],
    [0o644, '0600', false, 0o600],
    [0o644, 'u+x', false, 0o744],
    [0o755, 'go-rx', false, 0o700],
    [0o640, 'a+r', false, 0o644],
    [0o600, 'a+X', false, 0o600],
    [0o700, 'a+X', false, 0o711],
    [0o600, 'a+X', true, 0o711],
    [0o644, 'u=rwx,g=rx,o=', false, 0o750],
    [0o755, 'u+s,+t', false, 0o5755],
  ])('%o with %s (dir=%s) -> %o', (mode, spec, isDir, want) => {
    expect(applyChmod(mode, spec, isDir)).toBe(want);
  });
  it('rejects nonsense', () => {
    expect(() => applyChmod(0o644, 'q+z', false)).toThrow(/--chmod/);
  });
});

describe('globs and sources', () => {
  it('collects files, follows a named symlink inside the context, keeps inner symlinks', async () => {
    const ctx = path.join(dir, 'ctx');
    await fsp.mkdir(path.join(ctx, 'src/sub'), { recursive: true });
    await fsp.writeFile(path.join(ctx, 'src/a.txt'), 'a');
    await fsp.writeFile(path.join(ctx, 'src/sub/b.txt'), 'b');
    await fsp.symlink('a.txt', path.join(ctx, 'src/link'));
    await fsp.symlink('src', path.join(ctx, 'srclink'));
    await fsp.symlink('/etc/passwd', path.join(ctx, 'escape'));
    const items = await collectSources(ctx, ['srclink']);
    expect(items[0]!.entries.map((e) => e.rel)).toEqual(['', 'a.txt', 'link', 'sub', 'sub/b.txt']);
    expect(items[0]!.entries.find((e) => e.rel === 'link')!.linkTarget).toBe('a.txt');
    // an absolute symlink is re-rooted in the context, never followed to the host's /etc/passwd
    await expect(collectSources(ctx, ['escape'])).rejects.toMatchObject({ code: 'COPY_SOURCE_NOT_FOUND' });
    await expect(collectSources(ctx, ['../../etc/passwd'])).rejects.toMatchObject({ code: 'COPY_SOURCE_NOT_FOUND' });
    const globbed = await collectSources(ctx, ['src/*.txt']);
    expect(globbed.map((i) => i.path)).toEqual(['src/a.txt']);
  });

  it('digests content, not mtimes', async () => {
    const ctx = path.join(dir, 'ctx2');
    await fsp.mkdir(ctx, { recursive: true });
    await fsp.writeFile(path.join(ctx, 'f'), 'one');
    const d1 = await digestSources(await collectSources(ctx, ['f']));
    await fsp.utimes(path.join(ctx, 'f'), 12345, 12345);
    expect(await digestSources(await collectSources(ctx, ['f']))).toBe(d1);
    await fsp.writeFile(path.join(ctx, 'f'), 'two');
    expect(await digestSources(await collectSources(ctx, ['f']))).not.toBe(d1);
  });
});

describe('rootfs users', () => {
  let root: string;
  beforeAll(async () => {
    root = path.join(dir, 'root');
    await fsp.mkdir(path.join(root, 'etc'), { recursive: true });
    await fsp.writeFile(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n');
    await fsp.writeFile(path.join(root, 'etc/group'), 'root:x:0:\nwheel:x:10:app\nappgrp:x:1001:\nstaff:x:50:\n');
    await fsp.symlink('/etc', path.join(root, 'etclink'));
  });
  it('resolves names, ids and supplementary groups', async () => {
    // the primary gid leads the supplementary groups (BuildKit, after CVE-2023-25173)
    expect(await resolveUser(root, 'app')).toMatchObject({ uid: 1000, gid: 1001, additionalGids: [1001, 10], home: '/home/app' });
    expect(await resolveUser(root, '')).toMatchObject({ uid: 0, gid: 0, additionalGids: [0] });
    expect(await resolveUser(root, '1000')).toMatchObject({ uid: 1000, gid: 1001 });
    expect(await resolveUser(root, '4242')).toMatchObject({ uid: 4242, gid: 0 });
    expect(await resolveUser(root, 'app:staff')).toMatchObject({ uid: 1000, gid: 50, additionalGids: [50] });
    expect(await resolveUser(root, '5:6')).toMatchObject({ uid: 5, gid: 6 });
    await expect(resolveUser(root, 'nobody')).rejects.toMatchObject({ code: 'USER_NOT_FOUND' });
    expect(await resolveChown(root, 'app')).toEqual({ uid: 1000, gid: 1001 });
    expect(await resolveChown(root, '7')).toEqual({ uid: 7, gid: 7 });
  });
  it('secureJoin never leaves the root', async () => {
    expect(await secureJoin(root, '/etclink/passwd')).toBe(path.join(root, 'etc/passwd'));
    expect(await secureJoin(root, '../../../../etc/shadow')).toBe(path.join(root, 'etc/shadow'));
  });
});

describe('sandbox spec', () => {
  it('has the namespaces, capabilities and mounts Docker uses', () => {
    const spec = generateSpec({ rootfs: '/r', hostname: 'h', network: 'none', hostsFile: '/h', resolvConf: '/rc', process: { args: ['sh'], env: [], cwd: '/', uid: 0, gid: 0 } }) as {
      linux: { namespaces: Array<{ type: string }> };
      process: { capabilities: { bounding: string[] }; noNewPrivileges: boolean };
      mounts: Array<{ destination: string }>;
    };
    expect(spec.linux.namespaces.map((n) => n.type).sort()).toEqual(['ipc', 'mount', 'network', 'pid', 'uts']);
    expect(spec.process.capabilities.bounding).toEqual([...DEFAULT_CAPABILITIES]);
    expect(spec.process.noNewPrivileges).toBe(true);
    expect(spec.mounts.map((m) => m.destination)).toEqual(expect.arrayContaining(['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/etc/hosts', '/etc/resolv.conf']));
  });
});

describe('config semantics', () => {
  it('ENTRYPOINT resets an inherited CMD, but not one set in the stage', () => {
    const flags = { cmdSet: false };
    let c = applyConfig({ Cmd: ['sh'] }, { kind: 'entrypoint', command: { form: 'exec', args: ['/app'] } }, flags);
    expect(c.Cmd).toBeNull();
    const f2 = { cmdSet: false };
    c = applyConfig({}, { kind: 'cmd', command: { form: 'shell', command: 'run it' } }, f2);
    c = applyConfig(c, { kind: 'entrypoint', command: { form: 'exec', args: ['/app'] } }, f2);
    expect(c.Cmd).toEqual(['/bin/sh', '-c', 'run it']);
    expect(applyConfig({}, { kind: 'expose', ports: ['80', '53/UDP'] }, flags).ExposedPorts).toEqual({ '80/tcp': {}, '53/udp': {} });
  });
  it('cache keys depend on parent and inputs', () => {
    expect(cacheKey('a', { x: 1 })).toBe(cacheKey('a', { x: 1 }));
    expect(cacheKey('a', { x: 1 })).not.toBe(cacheKey('b', { x: 1 }));
    expect(cacheKey('a', { x: 1 })).not.toBe(cacheKey('a', { x: 2 }));
  });
});
