/** The rootless detection and planning (one module) and the spec runc gets in a user namespace. */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BuildError, cgroupState, checkLimitsAllowed, describeIsolation, generateSpec, parseSubIds, planRootless, singleIdHint, specForUserNamespace, type HostFacts } from '@hoist/builder';

const tool = (p: string) => ({ path: p, privileged: true });
const facts = (over: Partial<HostFacts> = {}): HostFacts => ({
  uid: 1001,
  gid: 1001,
  user: 'dev',
  subuid: 'other:100000:65536\ndev:165536:65536\n',
  subgid: 'other:100000:65536\n1001:165536:65536\n',
  newuidmap: tool('/usr/bin/newuidmap'),
  newgidmap: tool('/usr/bin/newgidmap'),
  maxUserNamespaces: 15000,
  ...over,
});

function refusal(f: HostFacts): BuildError {
  try {
    planRootless(f);
  } catch (e) {
    return e as BuildError;
  }
  throw new Error('planRootless did not refuse');
}

describe('parseSubIds', () => {
  it('finds the ranges of a user by name or by uid, skipping comments and junk', () => {
    const text = '# comment\ndev:100000:65536\nother:1:2\n1001:300000:10\ndev:bad:1\n\ndev:500000:0\n';
    expect(parseSubIds(text, { name: 'dev', id: 1001 })).toEqual([
      { start: 100000, count: 65536 },
      { start: 300000, count: 10 },
    ]);
    expect(parseSubIds(text, { name: 'nobody', id: 65534 })).toEqual([]);
  });
});

describe('planRootless', () => {
  it('maps the user to 0 and its subordinate ids to 1.. (as rootlesskit and podman)', () => {
    const p = planRootless(facts());
    expect(p.mapping).toBe('subids');
    expect(p.uidMap).toEqual([{ inside: 0, outside: 1001, count: 1 }, { inside: 1, outside: 165536, count: 65536 }]);
    expect(p.gidMap).toEqual([{ inside: 0, outside: 1001, count: 1 }, { inside: 1, outside: 165536, count: 65536 }]);
    expect(p.warnings).toEqual([]);
  });

  it('puts several ranges one after the other', () => {
    const p = planRootless(facts({ subuid: 'dev:200000:10\ndev:100000:65536\n' }));
    expect(p.uidMap).toEqual([
      { inside: 0, outside: 1001, count: 1 },
      { inside: 1, outside: 200000, count: 10 },
      { inside: 11, outside: 100000, count: 65536 },
    ]);
  });

  it('warns when the ranges are shorter than 65536 ids', () => {
    const p = planRootless(facts({ subuid: 'dev:200000:1000\n' }));
    expect(p.mapping).toBe('subids');
    expect(p.warnings.join('\n')).toMatch(/only ids 0-1000 exist/);
    expect(p.warnings.join('\n')).toMatch(/usermod --add-subuids/);
  });

  it('falls back to one id without /etc/subuid lines, naming the line to add', () => {
    const p = planRootless(facts({ subuid: 'other:100000:65536\n' }));
    expect(p.mapping).toBe('single');
    expect(p.uidMap).toEqual([{ inside: 0, outside: 1001, count: 1 }]);
    expect(p.gidMap).toEqual([{ inside: 0, outside: 1001, count: 1 }]);
    const w = p.warnings.join('\n');
    expect(w).toMatch(/dev has no range in \/etc\/subuid/);
    expect(w).toMatch(/"dev:100000:65536"/);
    expect(w).toMatch(/useradd, apt-get, USER/);
  });

  it('falls back to one id without the files at all, and without subgid lines', () => {
    expect(planRootless(facts({ subuid: undefined, subgid: undefined })).mapping).toBe('single');
    const p = planRootless(facts({ subgid: '' }));
    expect(p.mapping).toBe('single');
    expect(p.warnings.join('\n')).toMatch(/no range in \/etc\/subgid/);
  });

  it('falls back to one id without newuidmap, naming the package', () => {
    const f = facts();
    delete f.newuidmap;
    const p = planRootless(f);
    expect(p.mapping).toBe('single');
    expect(p.warnings.join('\n')).toMatch(/apt-get install uidmap/);
  });

  it('falls back to one id when newgidmap is not setuid', () => {
    const p = planRootless(facts({ newgidmap: { path: '/usr/bin/newgidmap', privileged: false } }));
    expect(p.mapping).toBe('single');
    expect(p.warnings.join('\n')).toMatch(/chmod u\+s \/usr\/bin\/newgidmap/);
  });

  it('refuses with the sysctl to change when user namespaces are off', () => {
    const a = refusal(facts({ maxUserNamespaces: 0 }));
    expect(a.code).toBe('ROOTLESS_UNAVAILABLE');
    expect(a.message).toMatch(/sysctl -w user\.max_user_namespaces=/);
    expect(refusal(facts({ unprivilegedUsernsClone: 0 })).message).toMatch(/kernel\.unprivileged_userns_clone=1/);
    expect(refusal(facts({ apparmorRestrictsUserns: 1 })).message).toMatch(/apparmor_restrict_unprivileged_userns=0/);
  });
});

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
