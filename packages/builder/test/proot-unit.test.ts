/** The no-privilege sandbox's command line (proot) and what it refuses. */
import { prootArgs, prootEnv, prootRefusal } from '../src/sandbox/proot.js';
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
