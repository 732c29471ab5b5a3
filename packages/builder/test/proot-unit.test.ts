/** The no-privilege sandbox's command line (proot) and what it refuses. */
import { prootArgs, prootEnv, prootRefusal } from '../src/sandbox/proot.js';
import { prootSeccompFilter, withPathSyscallFilter } from '../src/sandbox/proot-seccomp.js';
import { BuildError } from '../src/errors.js';
import type { SandboxOptions } from '../src/sandbox/spec.js';

const sb = (over: Partial<SandboxOptions> = {}, proc: Partial<SandboxOptions['process']> = {}): SandboxOptions => ({
  rootfs: '/store/snapshots/mounts/m1/root',
  hostname: 'buildkitsandbox',
  network: 'host',
  hostsFile: '/store/tmp/etc/hosts',
  resolvConf: '/store/tmp/etc/resolv.conf',
  process: { args: ['/bin/sh', '-c', 'make'], env: ['PATH=/usr/bin:/bin', 'A=b=c'], cwd: '/src', uid: 0, gid: 0, ...proc },
  ...over,
});

describe('prootArgs', () => {
  it('root: the rootfs as /, fake root ids, the cwd, /proc /dev /sys and the generated /etc files bound, then the command', () => {
    expect(prootArgs(sb(), () => '')).toEqual([
      '-r', '/store/snapshots/mounts/m1/root', '-0', '-w', '/src',
      '-b', '/proc:/proc', '-b', '/dev:/dev', '-b', '/sys:/sys',
      '-b', '/store/tmp/etc/hosts:/etc/hosts', '-b', '/store/tmp/etc/resolv.conf:/etc/resolv.conf',
      '/bin/sh', '-c', 'make',
    ]);
  });

  it('USER 1000:1000 appears as those ids (-i); RUN mounts become bindings, a tmpfs a private directory', () => {
    const args = prootArgs(
      sb({ mounts: [{ destination: '/cache', type: 'bind', source: '/store/cache/mounts/abc', options: ['rbind'] }, { destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: [] }] }, { uid: 1000, gid: 1000 }),
      (dest) => `/store/tmp/proot-tmpfs-for${dest}`,
    );
    expect(args.slice(2, 4)).toEqual(['-i', '1000:1000']);
    expect(args).toEqual(expect.arrayContaining(['/store/cache/mounts/abc:/cache', '/store/tmp/proot-tmpfs-for/scratch:/scratch']));
    expect(args.indexOf('/store/cache/mounts/abc:/cache')).toBeLessThan(args.indexOf('/bin/sh'));
  });

  it('refuses --network=none and the sandbox network, and limits, naming what is missing and the fix', () => {
    const none = prootRefusal(sb({ network: 'none' }));
    expect(none).toContain('--network=none needs a network namespace, which the no-privilege sandbox (proot) cannot create');
    expect(none).toContain('--isolation rootless');
    expect(prootRefusal(sb({ network: { netns: '/run/netns/x' } }))).toContain('an isolated network (slirp4netns) needs a network namespace');
    expect(prootRefusal(sb({ resources: { memoryBytes: 1 << 20 } }))).toContain('--memory, --cpus and --pids-limit need cgroups');
    expect(prootRefusal(sb())).toBeUndefined();
    let err: unknown;
    try {
      prootArgs(sb({ network: 'none' }), () => '');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BuildError);
    expect((err as BuildError).code).toBe('ISOLATION_UNSUPPORTED');
  });
});

describe('prootEnv', () => {
  it("is the RUN's environment only (values may hold '=')", () => {
    expect(prootEnv(sb())).toEqual({ PATH: '/usr/bin:/bin', A: 'b=c' });
  });
});

describe('prootSeccompFilter', () => {
  /** A classic-BPF interpreter for the instructions the filter uses (ld [k], jeq, jge, ret). */
  function verdict(prog: Buffer, arch: number, nr: number): number {
    const data = Buffer.alloc(16);
    data.writeUInt32LE(nr >>> 0, 0);
    data.writeUInt32LE(arch >>> 0, 4);
    let acc = 0;
    for (let pc = 0; pc * 8 < prog.length; pc++) {
      const code = prog.readUInt16LE(pc * 8);
      const jt = prog.readUInt8(pc * 8 + 2);
      const jf = prog.readUInt8(pc * 8 + 3);
      const k = prog.readUInt32LE(pc * 8 + 4);
      if (code === 0x20) acc = data.readUInt32LE(k);
      else if (code === 0x15) pc += acc === k ? jt : jf;
      else if (code === 0x35) pc += acc >= k ? jt : jf;
      else if (code === 0x06) return k;
      else throw new Error(`unexpected opcode ${code}`);
    }
    throw new Error('fell off the end');
  }
  const ALLOW = 0x7fff0000;
  const ENOSYS = 0x00050026;
  const X86_64 = 0xc000003e;
  const I386 = 0x40000003;
  const AARCH64 = 0xc00000b7;

  it('x86_64: ENOSYS for statx, openat2, faccessat2, fchmodat2, execveat, the new mount API and the x32 ABI; everything else allowed', () => {
    const p = prootSeccompFilter('x64')!;
    for (const nr of [332, 437, 439, 452, 322, 428, 429, 430, 431, 432, 433, 442, 0x40000000 + 2]) expect([nr, verdict(p, X86_64, nr)]).toEqual([nr, ENOSYS]);
    for (const nr of [0, 2, 4, 257, 262, 269, 59, 101, 157, 317, 383]) expect([nr, verdict(p, X86_64, nr)]).toEqual([nr, ALLOW]);
    // i386 programs: their own numbers (statx 383, execveat 358)
    for (const nr of [383, 358, 437]) expect(verdict(p, I386, nr)).toBe(ENOSYS);
    for (const nr of [332, 322, 5]) expect(verdict(p, I386, nr)).toBe(ALLOW);
    expect(verdict(p, AARCH64, 332)).toBe(ALLOW);
  });

  it('arm64 has its own numbers (statx 291, execveat 281); an unknown host architecture has no filter', () => {
    const p = prootSeccompFilter('arm64')!;
    for (const nr of [291, 281, 437, 439, 452]) expect(verdict(p, AARCH64, nr)).toBe(ENOSYS);
    for (const nr of [332, 56, 79, 221]) expect(verdict(p, AARCH64, nr)).toBe(ALLOW);
    expect(prootSeccompFilter('mips')).toBeUndefined();
  });

  it('is installed by perl, which execs proot with its arguments; without perl the reason is given', () => {
    const c = withPathSyscallFilter('/usr/bin/proot', ['-r', '/root', 'sh'], { arch: 'x64', perl: '/usr/bin/perl' });
    expect('refused' in c).toBe(false);
    const cmd = c as { bin: string; args: string[] };
    expect(cmd.bin).toBe('/usr/bin/perl');
    expect(cmd.args.slice(2)).toEqual(['157', prootSeccompFilter('x64')!.toString('hex'), '/usr/bin/proot', '-r', '/root', 'sh']);
    expect(withPathSyscallFilter('/usr/bin/proot', [], { arch: 'mips' })).toEqual({ refused: 'no system call table for mips here' });
  });
});
