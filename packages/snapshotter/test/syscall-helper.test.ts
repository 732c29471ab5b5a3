// The Perl process that makes mount(2), umount2(2) and the xattr reads of a layer commit:
// what each call does on the real kernel, how failures come back, and that it agrees with the
// tools it stands in for (util-linux mount, attr's getfattr).
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { HelperUnavailable, MNT_DETACH, MS_NODEV, MS_NOEXEC, MS_NOSUID, SyscallError, SyscallHelper } from '../src/syscall-helper.js';
import { parseGetfattr } from '../src/sys.js';
import { tmpdir } from './helpers.js';

async function mountLine(target: string): Promise<string | undefined> {
  const info = await fsp.readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').find((l) => l.split(' ')[4] === target);
}

function setfattr(name: string, value: string, file: string): void {
  expect(spawnSync('setfattr', ['-h', '-n', name, '-v', value, '--', file]).status).toBe(0);
}

describe('SyscallHelper', () => {
  const h = new SyscallHelper();
  afterAll(() => h.close());

  test('mounts a tmpfs with flags and data, and unmounts it', async () => {
    const dir = await tmpdir('sh-');
    await h.mount({ source: 'tmpfs', fstype: 'tmpfs', flags: MS_NOSUID | MS_NODEV | MS_NOEXEC, data: 'mode=0700,size=1m', target: dir });
    const line = await mountLine(dir);
    expect(line).toBeDefined();
    expect(line!.split(' ')[5]!.split(',')).toEqual(expect.arrayContaining(['nosuid', 'nodev', 'noexec']));
    expect(line).toMatch(/ - tmpfs tmpfs .*size=1024k.*mode=700/);
    expect((await fsp.stat(dir)).mode & 0o777).toBe(0o700);
    await h.umount(dir);
    expect(await mountLine(dir)).toBeUndefined();
  });

  test('an overlay mount takes paths relative to its cwd (kept short for the one-page limit)', async () => {
    const dir = await tmpdir('sh-');
    for (const d of ['lo', 'up', 'wk', 'mnt']) await fsp.mkdir(path.join(dir, d));
    await fsp.writeFile(path.join(dir, 'lo', 'from-lower'), 'low');
    const target = path.join(dir, 'mnt');
    await h.mount({ cwd: dir, source: 'overlay', fstype: 'overlay', data: 'lowerdir=lo,upperdir=up,workdir=wk', target });
    try {
      expect(await fsp.readFile(path.join(target, 'from-lower'), 'utf8')).toBe('low');
      await fsp.writeFile(path.join(target, 'new'), 'up');
      expect(await fsp.readFile(path.join(dir, 'up', 'new'), 'utf8')).toBe('up');
    } finally {
      await h.umount(target);
    }
    // the helper went back to / after the call: a relative path no longer resolves against dir
    await expect(h.mount({ source: 'overlay', fstype: 'overlay', data: 'lowerdir=lo', target })).rejects.toMatchObject({ errno: 2 });
  });

  test("failures come back as the kernel's errno, and the helper goes on serving", async () => {
    const dir = await tmpdir('sh-');
    const missing = path.join(dir, 'missing');
    const e = await h.mount({ source: 'tmpfs', fstype: 'tmpfs', target: missing }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SyscallError);
    expect((e as SyscallError).errno).toBe(2);
    expect((e as SyscallError).message).toBe('mount failed: ENOENT (2)');
    // not a mount point
    await expect(h.umount(dir)).rejects.toMatchObject({ errno: 22 });
    await expect(h.mount({ source: 'x', fstype: 'no-such-fs', target: dir })).rejects.toMatchObject({ errno: 19 });
    await h.mount({ source: 'tmpfs', fstype: 'tmpfs', target: dir });
    await h.umount(dir);
  });

  test('a busy mount fails EBUSY; MNT_DETACH detaches it anyway', async () => {
    const dir = await tmpdir('sh-');
    await h.mount({ source: 'tmpfs', fstype: 'tmpfs', target: dir });
    const fd = await fsp.open(path.join(dir, 'held'), 'w');
    try {
      await expect(h.umount(dir)).rejects.toMatchObject({ errno: 16 });
      await h.umount(dir, MNT_DETACH);
      expect(await mountLine(dir)).toBeUndefined();
    } finally {
      await fd.close();
    }
  });

  test('calls made at once are answered in order, each with its own answer', async () => {
    const dir = await tmpdir('sh-');
    const results = await Promise.allSettled([
      h.umount(dir),
      h.mount({ source: 'tmpfs', fstype: 'tmpfs', target: dir }),
      h.xattrsTree(dir),
      h.umount(dir),
      h.umount(dir),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled', 'fulfilled', 'fulfilled', 'rejected']);
  });
});

describe('SyscallHelper.xattrsTree', () => {
  const h = new SyscallHelper();
  afterAll(() => h.close());

  test('reads the same xattrs as getfattr -R, including awkward names, binary values and symlinks', async () => {
    const dir = await tmpdir('sx-');
    const sub = path.join(dir, 'a dir', 'ünï\ncødé');
    await fsp.mkdir(sub, { recursive: true });
    const file = path.join(sub, 'f\\x=y "q"');
    await fsp.writeFile(file, 'x');
    await fsp.writeFile(path.join(dir, 'plain'), 'target of the link');
    await fsp.symlink('plain', path.join(dir, 'link'));
    setfattr('user.p', 'on the target only', path.join(dir, 'plain'));
    setfattr('user.one', 'v1', file);
    setfattr('user.bin', '0x00ff0a20', file);
    setfattr('user.empty', '', file);
    setfattr('trusted.overlay.opaque', 'y', sub);
    setfattr('user.big', `0x${'ab'.repeat(2000)}`, dir);
    const mine = await h.xattrsTree(dir);
    const tool = spawnSync('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', '--', dir]);
    expect(tool.status).toBe(0);
    expect(mine).toEqual(parseGetfattr(tool.stdout.toString('utf8')));
    expect(mine.get(file)?.get('user.bin')).toEqual(Buffer.from([0, 0xff, 0x0a, 0x20]));
    expect(mine.get(file)?.get('user.empty')).toEqual(Buffer.alloc(0));
    expect(mine.get(sub)?.get('trusted.overlay.opaque')).toEqual(Buffer.from('y'));
    expect(mine.get(dir)?.get('user.big')).toEqual(Buffer.alloc(2000, 0xab));
    expect(mine.get(path.join(dir, 'plain'))?.get('user.p')).toEqual(Buffer.from('on the target only'));
    expect(mine.has(path.join(dir, 'link'))).toBe(false);
  });

  test('a tree that is not there fails with ENOENT', async () => {
    const dir = await tmpdir('sx-');
    await expect(h.xattrsTree(path.join(dir, 'gone'))).rejects.toMatchObject({ errno: 2 });
  });
});

describe('SyscallHelper.x32Abi', () => {
  test('on x86_64: true exactly when an x32 system call answers; false on other architectures', async () => {
    const h = new SyscallHelper();
    try {
      // an x32 getpid (__X32_SYSCALL_BIT | 39) made by a perl of its own: 0 exit when it answers
      const answers = spawnSync('perl', ['-e', 'exit(syscall(0x40000000 + 39) > 0 ? 0 : 1)']).status === 0;
      if (process.arch === 'x64') expect(await h.x32Abi()).toBe(answers);
      else expect(await h.x32Abi()).toBe(false);
      expect(await new SyscallHelper({ arch: 'arm64' }).x32Abi()).toBe(false);
    } finally {
      h.close();
    }
  });

  test('under a seccomp filter that kills x32 callers, the answer is false and the helper lives on', async () => {
    // a perl that installs such a filter (no_new_privs, then seccomp(2)) and execs the real perl;
    // the filter is a classic BPF program: syscall nr >= __X32_SYSCALL_BIT -> KILL_PROCESS, else ALLOW
    const dir = await tmpdir('sx32-');
    const wrapper = path.join(dir, 'perl');
    const install = [
      'my $prog = pack("SCCL" x 4, 0x20, 0, 0, 0, 0x35, 0, 1, 0x40000000, 0x06, 0, 0, 0x80000000, 0x06, 0, 0, 0x7fff0000);',
      'syscall(157, 38, 1, 0, 0, 0) == 0 or die "no_new_privs: $!";',
      'my $fprog = pack("S x6 P" . length($prog), 4, $prog);',
      'syscall(317, 1, 0, $fprog) == 0 or die "seccomp: $!";',
      'exec("perl", @ARGV) or die "exec: $!";',
    ].join(' ');
    await fsp.writeFile(wrapper, `#!/bin/sh\nexec perl -e '${install}' -- "$@"\n`, { mode: 0o755 });
    const h = new SyscallHelper({ arch: 'x64', perl: wrapper });
    try {
      expect(await h.x32Abi()).toBe(false);
      expect(h.usable).toBe(true);
      // the helper itself still serves
      await expect(h.xattrsTree(dir)).resolves.toBeInstanceOf(Map);
    } finally {
      h.close();
    }
  });

  test('where the helper cannot run, x32 counts as possible (the filter keeps it)', async () => {
    expect(await new SyscallHelper({ arch: 'x64', perl: '/nonexistent/perl' }).x32Abi()).toBe(true);
  });
});

describe('where the helper cannot run', () => {
  test('no syscall numbers for the architecture: unusable, every call rejects HelperUnavailable', async () => {
    const h = new SyscallHelper({ arch: 'mips' });
    expect(h.usable).toBe(false);
    await expect(h.umount('/nowhere')).rejects.toBeInstanceOf(HelperUnavailable);
  });

  test('no perl: the first call rejects HelperUnavailable and the helper stays unusable', async () => {
    const h = new SyscallHelper({ arch: 'x64', perl: '/nonexistent/perl' });
    await expect(h.xattrsTree('/')).rejects.toBeInstanceOf(HelperUnavailable);
    expect(h.usable).toBe(false);
  });

  test('a helper killed with calls in flight rejects them HelperUnavailable', async () => {
    const h = new SyscallHelper();
    const dir = await tmpdir('sk-');
    await h.umount(dir).catch(() => undefined);
    const pid = (h as unknown as { proc: { pid: number } }).proc.pid;
    process.kill(pid, 'SIGKILL');
    await expect(h.xattrsTree(dir)).rejects.toBeInstanceOf(HelperUnavailable);
    expect(h.usable).toBe(false);
  });
});
