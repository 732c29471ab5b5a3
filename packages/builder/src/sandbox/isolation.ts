import { accessSync, constants, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { currentUserNamespace, type IdRange, type UserNamespace } from '@hoist/oci';
import { BuildError } from '../errors.js';

/** How the build's sandboxes are isolated, for the progress output ("which mode runs and why"). */
export function describeIsolation(ns: UserNamespace | undefined = currentUserNamespace()): string {
  if (!ns) return 'root (runc)';
  if (singleIdNamespace(ns)) return `rootless (runc in a user namespace with one id: uid 0 = host uid ${ns.uids[0]!.outside}; no /etc/subuid range)`;
  return `rootless (runc in a user namespace: ${describeRanges(ns.uids)})`;
}

function describeRanges(ranges: IdRange[]): string {
  return ranges
    .map((r) => (r.count === 1 ? `uid ${r.inside} = host uid ${r.outside}` : `uids ${r.inside}-${r.inside + r.count - 1} = host ${r.outside}-${r.outside + r.count - 1}`))
    .join(', ');
}

/** Is this a rootless namespace with only id 0 (no subordinate ids)? */
export function singleIdNamespace(ns: UserNamespace | undefined = currentUserNamespace()): boolean {
  return ns !== undefined && ns.uids.length === 1 && ns.uids[0]!.count === 1;
}

/** Appended to a failed RUN's error in a single-id namespace, where the usual cause is an id that does not exist. */
export function singleIdHint(ns: UserNamespace | undefined = currentUserNamespace()): string {
  if (!singleIdNamespace(ns)) return '';
  return (
    '. This build runs rootless with a single id: only uid/gid 0 exist, so chown to another id, useradd, apt-get ' +
    'and USER fail ("Invalid argument"); fix: give your user ranges in /etc/subuid and /etc/subgid (see the warning above)'
  );
}

export type CgroupState = { kind: 'v1' } | { kind: 'v2'; path: string; writable: boolean };

/** The cgroup situation of this process: cgroup v1 or hybrid (never delegated), else its v2 cgroup and whether it is writable. */
export function cgroupState(procCgroup = '/proc/self/cgroup', cgroupRoot = '/sys/fs/cgroup'): CgroupState {
  let lines: string[] = [];
  try {
    lines = readFileSync(procCgroup, 'utf8').trim().split('\n');
  } catch {
    return { kind: 'v1' };
  }
  const v2 = lines.find((l) => l.startsWith('0::'));
  if (!v2 || lines.some((l) => !l.startsWith('0::'))) return { kind: 'v1' };
  const rel = v2.slice(3);
  const dir = path.join(cgroupRoot, rel);
  try {
    accessSync(path.join(dir, 'cgroup.subtree_control'), constants.W_OK);
    return { kind: 'v2', path: rel, writable: true };
  } catch {
    return { kind: 'v2', path: rel, writable: false };
  }
}

/**
 * `--memory`, `--cpus` and `--pids-limit` need cgroups this process may manage. Root has them;
 * rootless (inside a user namespace) is refused before the build starts, with the reason.
 */
export function checkLimitsAllowed(flags: string[], ns: UserNamespace | undefined = currentUserNamespace(), cgroups: () => CgroupState = () => cgroupState()): void {
  if (!ns || flags.length === 0) return;
  const what = `${flags.join(', ')} ${flags.length > 1 ? 'need' : 'needs'} a cgroup hoist may manage, but hoist runs rootless (in a user namespace)`;
  const cg = cgroups();
  let why: string;
  if (cg.kind === 'v1') {
    why = 'and this host mounts cgroup v1 controllers (v1 or hybrid v1+v2), which are never delegated to an unprivileged user';
  } else if (!cg.writable) {
    why = `and your cgroup ${cg.path} is not delegated to you (systemd: Delegate=yes for user@.service, and run hoist in a user session)`;
  } else {
    why = 'and limits in a delegated cgroup v2 are not implemented by rootless hoist yet';
  }
  throw new BuildError('LIMITS_UNAVAILABLE', `${what} ${why}. Build without these flags, or run hoist as root`);
}
