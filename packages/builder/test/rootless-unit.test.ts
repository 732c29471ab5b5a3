/** Rootless, inside the namespace: the spec runc gets, the mode in progress output, refused limits. */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cgroupState, checkLimitsAllowed, describeIsolation, generateSpec, singleIdHint, specForUserNamespace, type BuildError } from '@hoist/builder';

const FULL = { uids: [{ inside: 0, outside: 1001, count: 1 }, { inside: 1, outside: 100000, count: 65536 }], gids: [{ inside: 0, outside: 1001, count: 1 }, { inside: 1, outside: 100000, count: 65536 }] };
const SINGLE = { uids: [{ inside: 0, outside: 1001, count: 1 }], gids: [{ inside: 0, outside: 1001, count: 1 }] };

describe('specForUserNamespace', () => {
  const spec = generateSpec({
    rootfs: '/r',
    hostname: 'h',
    network: 'host',
    hostsFile: '/h',
    resolvConf: '/rc',
    cgroupsPath: '/hoist/x',
    resources: { memoryBytes: 1 << 20 },
    process: { args: ['true'], env: [], cwd: '/', uid: 0, gid: 0 },
  });

  it('drops the cgroups path and every resource (runc then manages cgroups rootless)', () => {
    const s = specForUserNamespace(spec, FULL) as { linux: Record<string, unknown> };
    expect(s.linux.cgroupsPath).toBeUndefined();
    expect(s.linux.resources).toBeUndefined();
    expect(s.linux.namespaces).toEqual((spec.linux as Record<string, unknown>).namespaces);
  });

  it('keeps devpts gid=5 when gid 5 is mapped, drops it with a single id', () => {
    const devpts = (s: Record<string, unknown>) => (s.mounts as Array<{ destination: string; options: string[] }>).find((m) => m.destination === '/dev/pts')!.options;
    expect(devpts(specForUserNamespace(spec, FULL))).toContain('gid=5');
    expect(devpts(specForUserNamespace(spec, SINGLE))).not.toContain('gid=5');
    expect(devpts(specForUserNamespace(spec, SINGLE))).toContain('newinstance');
  });

  it('leaves the other mounts as root has them', () => {
    const dests = (s: Record<string, unknown>) => (s.mounts as Array<{ destination: string }>).map((m) => m.destination);
    expect(dests(specForUserNamespace(spec, FULL))).toEqual(dests(spec));
  });
});

describe('isolation in progress output and errors', () => {
  it('names the mode and the mapping', () => {
    expect(describeIsolation(undefined)).toBe('root (runc)');
    expect(describeIsolation(FULL)).toBe('rootless (runc in a user namespace: uid 0 = host uid 1001, uids 1-65536 = host 100000-165535)');
    expect(describeIsolation(SINGLE)).toMatch(/one id: uid 0 = host uid 1001; no \/etc\/subuid range/);
  });

  it('adds the single-id hint to failed steps only with a single id', () => {
    expect(singleIdHint(SINGLE)).toMatch(/only uid\/gid 0 exist, so chown to another id/);
    expect(singleIdHint(FULL)).toBe('');
    expect(singleIdHint(undefined)).toBe('');
  });

  it('refuses --memory and friends rootless, saying why for each cgroup setup', () => {
    const msg = (cg: ReturnType<typeof cgroupState>): string => {
      try {
        checkLimitsAllowed(['--memory', '--pids-limit'], FULL, () => cg);
      } catch (e) {
        expect((e as BuildError).code).toBe('LIMITS_UNAVAILABLE');
        return (e as Error).message;
      }
      return 'allowed';
    };
    expect(msg({ kind: 'v1' })).toMatch(/^--memory, --pids-limit need a cgroup .* cgroup v1 controllers .* never delegated/);
    expect(msg({ kind: 'v2', path: '/user.slice/x', writable: false })).toMatch(/your cgroup \/user\.slice\/x is not delegated to you \(systemd: Delegate=yes/);
    expect(msg({ kind: 'v2', path: '/x', writable: true })).toMatch(/not implemented by rootless hoist yet/);
    expect(() => checkLimitsAllowed(['--memory'], undefined, () => ({ kind: 'v1' }))).not.toThrow();
    expect(() => checkLimitsAllowed([], FULL, () => ({ kind: 'v1' }))).not.toThrow();
  });

  it('reads the cgroup setup from /proc/self/cgroup', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hoist-cgroup-'));
    try {
      const proc = path.join(dir, 'cgroup');
      await fsp.writeFile(proc, '4:memory:/x\n0::/\n');
      expect(cgroupState(proc, dir)).toEqual({ kind: 'v1' });
      await fsp.writeFile(proc, '0::/user.slice/u\n');
      await fsp.mkdir(path.join(dir, 'user.slice', 'u'), { recursive: true });
      expect(cgroupState(proc, dir)).toEqual({ kind: 'v2', path: '/user.slice/u', writable: false });
      await fsp.writeFile(path.join(dir, 'user.slice', 'u', 'cgroup.subtree_control'), '');
      expect(cgroupState(proc, dir)).toEqual({ kind: 'v2', path: '/user.slice/u', writable: true });
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});
