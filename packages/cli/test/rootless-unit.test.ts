/** The rootless detection and planning (one module: the host's subordinate ids, newuidmap, sysctls) and the re-exec decisions. */
import { commandOf, idMapArgs, wantsUserNamespace, warningLine } from '../src/rootless.js';
import { parseSubIds, planRootless, type HostFacts } from '../src/rootless-host.js';
import type { RootlessError } from '../src/errors.js';

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

function refusal(f: HostFacts): RootlessError {
  try {
    planRootless(f);
  } catch (e) {
    return e as RootlessError;
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


describe('rootless re-exec decisions', () => {
  it('finds the subcommand past global options', () => {
    expect(commandOf(['build', '.'])).toBe('build');
    expect(commandOf(['--root', '/s', 'images'])).toBe('images');
    expect(commandOf([])).toBeUndefined();
  });

  it('re-runs store commands of a non-root user, nothing else', () => {
    expect(wantsUserNamespace(['build', '.'], 1001)).toBe(true);
    expect(wantsUserNamespace(['--root', '/s', 'prune', '-f'], 1001)).toBe(true);
    expect(wantsUserNamespace(['build', '.'], 0)).toBe(false);
    for (const cmd of ['version', 'plan', 'login', 'logout', 'help']) expect(wantsUserNamespace([cmd], 1001)).toBe(false);
    expect(wantsUserNamespace(['build', '--help'], 1001)).toBe(false);
    expect(wantsUserNamespace([], 1001)).toBe(false);
  });

  it('prints the warning as the progress mode does', () => {
    expect(warningLine('w', ['build', '.'])).toBe('WARNING: w\n');
    for (const args of [['build', '--progress', 'json', '.'], ['build', '--progress=json', '.']]) {
      expect(JSON.parse(warningLine('w', args))).toEqual({ time: expect.any(String), type: 'warning', message: 'w' });
    }
  });

  it('writes newuidmap arguments as pid and triples', () => {
    expect(idMapArgs(42, [{ inside: 0, outside: 1001, count: 1 }, { inside: 1, outside: 100000, count: 65536 }])).toEqual(['42', '0', '1001', '1', '1', '100000', '65536']);
  });
});
