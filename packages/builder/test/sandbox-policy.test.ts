/**
 * The sandbox's policy as data: the default seccomp profile (Docker's), profiles from files,
 * entitlements, the network modes and their cache-key value, and the error when slirp4netns is
 * missing.
 */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  allCurrentCapabilities,
  compileSeccomp,
  defaultSeccompProfile,
  effectiveDefaultNetwork,
  DEFAULT_CAPABILITIES,
  generateSpec,
  openSandboxNetwork,
  parseEntitlements,
  parseSeccompProfile,
  runNetwork,
  sandboxResolvConf,
  tunUsable,
  type OciSeccomp,
  type SandboxOptions,
} from '@hoist/builder';
import { tempDir } from '@hoist/testkit';

/** The syscalls a compiled profile allows without conditions on arguments. */
function plainlyAllowed(s: OciSeccomp): Set<string> {
  return new Set(s.syscalls.filter((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args).flatMap((r) => r.names));
}

function argRules(s: OciSeccomp, name: string): Array<{ index: number; value: number; op: string }> {
  return s.syscalls.filter((r) => r.names.includes(name) && r.args).flatMap((r) => r.args!);
}

const AMD64 = { caps: DEFAULT_CAPABILITIES, arch: 'x64', kernel: '6.1.0-18-amd64' };

describe('default seccomp profile (Docker default equivalent)', () => {
  const s = compileSeccomp(defaultSeccompProfile(), AMD64);
  const allowed = plainlyAllowed(s);

  it('denies everything unlisted with EPERM, for the 64- and 32-bit x86 ABIs', () => {
    expect(s.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(s.defaultErrnoRet).toBe(1);
    expect(s.architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  });

  it('allows what ordinary builds use', () => {
    for (const name of ['read', 'write', 'openat', 'execve', 'fork', 'vfork', 'wait4', 'mmap', 'chown', 'setuid', 'socketpair', 'connect', 'chroot', 'arch_prctl', 'ptrace']) {
      expect({ name, allowed: allowed.has(name) }).toEqual({ name, allowed: true });
    }
  });

  it('denies namespaces, mounts, keyrings, bpf, perf, kexec, modules, reboot and clock setting without the capability', () => {
    const denied = ['unshare', 'setns', 'mount', 'umount2', 'add_key', 'keyctl', 'request_key', 'bpf', 'perf_event_open', 'kexec_load', 'kexec_file_load', 'init_module', 'finit_module', 'delete_module', 'reboot', 'settimeofday', 'clock_settime', 'open_by_handle_at', 'userfaultfd', 'swapon', 'acct', 'iopl'];
    const everywhere = new Set(s.syscalls.flatMap((r) => (r.action === 'SCMP_ACT_ALLOW' ? r.names : [])));
    for (const name of denied) expect({ name, allowed: everywhere.has(name) }).toEqual({ name, allowed: false });
  });

  it('allows personality only for PER_LINUX, PER_LINUX32, UNAME26 (and combined) and the query', () => {
    expect(allowed.has('personality')).toBe(false);
    const values = argRules(s, 'personality').map((a) => [a.index, a.value, a.op]);
    expect(values.sort()).toEqual([[0, 0, 'SCMP_CMP_EQ'], [0, 0x20000, 'SCMP_CMP_EQ'], [0, 0x20008, 'SCMP_CMP_EQ'], [0, 0xffffffff, 'SCMP_CMP_EQ'], [0, 8, 'SCMP_CMP_EQ']].sort());
  });

  it('allows clone only without namespace flags, and makes clone3 fall back to it (ENOSYS)', () => {
    expect(allowed.has('clone')).toBe(false);
    const namespaceFlags = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000;
    expect(argRules(s, 'clone')).toEqual([{ index: 0, value: namespaceFlags, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }]);
    expect(s.syscalls.find((r) => r.names.includes('clone3'))).toMatchObject({ action: 'SCMP_ACT_ERRNO', errnoRet: 38 });
  });

  it('keeps AF_ALG and AF_VSOCK sockets closed', () => {
    expect(allowed.has('socket')).toBe(false);
    const ok = (family: number): boolean =>
      argRules(s, 'socket').some((a) => (a.op === 'SCMP_CMP_LT' && family < a.value) || (a.op === 'SCMP_CMP_EQ' && family === a.value) || (a.op === 'SCMP_CMP_GT' && family > a.value));
    expect([1, 2, 10, 16, 17, 39, 44].map(ok)).toEqual([true, true, true, true, true, true, true]);
    expect([38, 40].map(ok)).toEqual([false, false]);
  });

  it('grants the syscalls of a capability the process holds (CAP_SYS_ADMIN: unshare, mount, any clone)', () => {
    const admin = compileSeccomp(defaultSeccompProfile(), { ...AMD64, caps: [...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN'] });
    const a = plainlyAllowed(admin);
    expect(['unshare', 'mount', 'setns', 'clone', 'clone3'].every((n) => a.has(n))).toBe(true);
    expect(argRules(admin, 'clone')).toEqual([]);
    expect(admin.syscalls.some((r) => r.names.includes('clone3') && r.action !== 'SCMP_ACT_ALLOW')).toBe(false);
  });

  it('leaves x32 out where the kernel runs no x32 system calls; keeps it where unknown, and in profiles that list their architectures', () => {
    expect(compileSeccomp(defaultSeccompProfile(), { ...AMD64, x32: false }).architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86']);
    expect(compileSeccomp(defaultSeccompProfile(), { ...AMD64, x32: true }).architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    const listed = { ...defaultSeccompProfile(), architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X32'] };
    expect(compileSeccomp(listed, { ...AMD64, x32: false }).architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X32']);
    // the rules are the same either way
    expect(compileSeccomp(defaultSeccompProfile(), { ...AMD64, x32: false }).syscalls).toEqual(s.syscalls);
  });

  it('follows the architecture: arm64 runs aarch64 and arm code, has no arch_prctl', () => {
    const arm = compileSeccomp(defaultSeccompProfile(), { ...AMD64, arch: 'arm64' });
    expect(arm.architectures).toEqual(['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
    const a = plainlyAllowed(arm);
    expect(a.has('arch_prctl')).toBe(false);
    expect(a.has('cacheflush')).toBe(true);
  });

  it('drops ptrace on kernels older than 4.8 (seccomp could be bypassed with it there)', () => {
    expect(plainlyAllowed(compileSeccomp(defaultSeccompProfile(), { ...AMD64, kernel: '4.4.0-210-generic' })).has('ptrace')).toBe(false);
  });
});

describe('runtime spec', () => {
  const base: SandboxOptions = { rootfs: '/r', hostname: 'h', network: 'none', hostsFile: '/h', resolvConf: '/rc', process: { args: ['sh'], env: [], cwd: '/', uid: 0, gid: 0 } };
  type Spec = { linux: { seccomp?: OciSeccomp; namespaces: Array<{ type: string; path?: string }> } };

  it('applies the default profile unless unconfined or privileged (RUN --security=insecure)', () => {
    expect((generateSpec(base) as Spec).linux.seccomp?.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect((generateSpec({ ...base, seccomp: 'unconfined' }) as Spec).linux.seccomp).toBeUndefined();
    expect((generateSpec({ ...base, privileged: true }) as Spec).linux.seccomp).toBeUndefined();
  });

  it('joins a prepared network namespace by path', () => {
    const spec = generateSpec({ ...base, network: { netns: '/proc/4242/ns/net' } }) as Spec;
    expect(spec.linux.namespaces.filter((n) => n.type === 'network')).toEqual([{ type: 'network', path: '/proc/4242/ns/net' }]);
    expect((generateSpec({ ...base, network: 'host' }) as Spec).linux.namespaces.some((n) => n.type === 'network')).toBe(false);
  });
});

describe('capabilities of an insecure RUN', () => {
  it('are those this process may pass on: a host without CAP_SYS_RESOURCE gives every other one', () => {
    const caps = allCurrentCapabilities('Name:\tnode\nCapBnd:\t000001fffeffffff\n');
    expect(caps).toHaveLength(40);
    expect(caps).not.toContain('CAP_SYS_RESOURCE');
    expect(caps).toEqual(expect.arrayContaining(['CAP_SYS_ADMIN', 'CAP_NET_ADMIN', 'CAP_SYS_MODULE', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE', ...DEFAULT_CAPABILITIES]));
    expect(allCurrentCapabilities('CapBnd:\t00000000a80425fb\n').sort()).toEqual([...DEFAULT_CAPABILITIES].sort());
  });
});

describe('seccomp profile files (--security-opt seccomp=PATH)', () => {
  it('reads Docker-format profiles, "name" included, and compiles their conditions', () => {
    const p = parseSeccompProfile(
      JSON.stringify({
        defaultAction: 'SCMP_ACT_ALLOW',
        architectures: ['SCMP_ARCH_X86_64'],
        syscalls: [
          { name: 'mkdirat', action: 'SCMP_ACT_ERRNO' },
          { names: ['chroot'], action: 'SCMP_ACT_ERRNO', excludes: { caps: ['CAP_SYS_CHROOT'] } },
        ],
      }),
      'p.json',
    );
    const s = compileSeccomp(p, AMD64);
    expect(s).toEqual({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'], syscalls: [{ names: ['mkdirat'], action: 'SCMP_ACT_ERRNO' }] });
  });

  it.each([
    ['not json', /p\.json: not JSON/],
    ['{"syscalls": []}', /"defaultAction" must be an SCMP_ACT_\* value/],
    ['{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]}', /syscalls\[0\] needs "names"/],
    ['{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "allow"}]}', /syscalls\[0\]\.action must be an SCMP_ACT_\* value/],
  ])('rejects %s with a message naming the file and the problem', (text, message) => {
    expect(() => parseSeccompProfile(text, 'p.json')).toThrow(message);
  });
});

describe('entitlements and network modes', () => {
  it('knows network.host and security.insecure, nothing else', () => {
    expect(parseEntitlements(['security.insecure', 'network.host,security.insecure'])).toEqual(['security.insecure', 'network.host']);
    expect(() => parseEntitlements(['device'])).toThrow(/--allow device: unknown entitlement; use --allow network.host or --allow security.insecure/);
  });

  it('gives a RUN its own flag, else the build default, and names the default network the same way always', () => {
    expect(runNetwork('default', undefined)).toBe('sandbox');
    expect(runNetwork('default', 'default')).toBe('sandbox');
    expect(runNetwork('default', 'host')).toBe('host');
    expect(runNetwork('none', 'host')).toBe('none');
    expect(runNetwork('host', undefined)).toBe('host');
  });

  it("points the sandbox's resolv.conf at slirp's DNS and keeps the host's search domains", () => {
    expect(sandboxResolvConf('nameserver 127.0.0.53\nsearch corp.example\noptions edns0\n')).toBe('nameserver 10.0.2.3\nsearch corp.example\noptions edns0\n');
  });

  it('without slirp4netns, says how to install it or which --network to use instead', async () => {
    const empty = await fsp.mkdtemp(path.join(os.tmpdir(), 'hoist-nopath-'));
    try {
      await expect(openSandboxNetwork({ searchPath: [empty] })).rejects.toMatchObject({
        code: 'NETWORK_UNAVAILABLE',
        message: expect.stringMatching(/slirp4netns is not installed; install it with `apt-get install slirp4netns`, or build with --network host or --network none/),
      });
    } finally {
      await fsp.rm(empty, { recursive: true, force: true });
    }
  });
});

describe("the build's default network, as root and rootless", () => {
  const open = (): boolean => true;
  const closed = (): boolean => false;

  it('root never falls back: the sandbox network stays the default even without a tun device', () => {
    expect(effectiveDefaultNetwork(undefined, { rootless: false, tunUsable: closed })).toEqual({ network: 'default' });
    expect(effectiveDefaultNetwork('default', { rootless: false, tunUsable: closed })).toEqual({ network: 'default' });
  });

  it('rootless with /dev/net/tun open: the sandbox network, no warning', () => {
    expect(effectiveDefaultNetwork(undefined, { rootless: true, tunUsable: open })).toEqual({ network: 'default' });
  });

  it('rootless with /dev/net/tun closed: the host network, with a warning naming the device and the fixes', () => {
    const r = effectiveDefaultNetwork(undefined, { rootless: true, tunUsable: closed });
    expect(r.network).toBe('host');
    expect(r.warning).toContain('/dev/net/tun is not open to your user');
    expect(r.warning).toContain('chmod 0666 /dev/net/tun');
    expect(r.warning).toContain('--network none');
  });

  it('an explicit --network is never changed', () => {
    for (const n of ['host', 'none'] as const) expect(effectiveDefaultNetwork(n, { rootless: true, tunUsable: closed })).toEqual({ network: n });
  });

  it('tunUsable: a device this process cannot open is reported as not usable', async () => {
    const dir = await tempDir('tun');
    const missing = path.join(dir, 'tun');
    expect(tunUsable(missing)).toBe(false);
    await fsp.writeFile(missing, '');
    expect(tunUsable(missing)).toBe(true);
    await fsp.rm(dir, { recursive: true, force: true });
  });
});
