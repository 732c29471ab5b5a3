import { existsSync, readFileSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import type { IdRange } from '@hoist/oci';
import { RootlessError } from './errors.js';

/**
 * Everything rootless hoist needs to know about the host, in one place: the user's subordinate
 * ids (/etc/subuid, /etc/subgid), newuidmap/newgidmap (Debian package `uidmap`), and whether
 * unprivileged user namespaces are allowed. `readHostFacts` reads them; `planRootless` (pure)
 * decides the id mapping or explains what is missing. Whether overlayfs mounts inside the
 * namespace is probed there, by the snapshotter (it knows its own mount options); the
 * namespace's own maps are read by @hoist/oci's currentUserNamespace.
 * Only Node built-ins here: the parent process that sets up the namespace stays small.
 */

export interface SubIdRange {
  start: number;
  count: number;
}

/** The ranges of `user` in the text of /etc/subuid or /etc/subgid ("name:start:count" or "uid:start:count" lines). */
export function parseSubIds(text: string, user: { name: string; id: number }): SubIdRange[] {
  const out: SubIdRange[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [who, start, count] = line.split(':');
    if (who !== user.name && who !== String(user.id)) continue;
    const s = Number(start);
    const c = Number(count);
    if (Number.isSafeInteger(s) && Number.isSafeInteger(c) && s >= 0 && c > 0) out.push({ start: s, count: c });
  }
  return out;
}

/** newuidmap or newgidmap: where it is and whether it may map ids (setuid root, or a file capability). */
export interface IdMapTool {
  path: string;
  privileged: boolean;
}

export interface HostFacts {
  uid: number;
  gid: number;
  user: string;
  /** Text of /etc/subuid and /etc/subgid (undefined: no such file). */
  subuid?: string;
  subgid?: string;
  newuidmap?: IdMapTool;
  newgidmap?: IdMapTool;
  /** /proc/sys/user/max_user_namespaces */
  maxUserNamespaces?: number;
  /** /proc/sys/kernel/unprivileged_userns_clone (Debian kernels before 5.10 had it off by default) */
  unprivilegedUsernsClone?: number;
  /** /proc/sys/kernel/apparmor_restrict_unprivileged_userns (Ubuntu 23.10 and later) */
  apparmorRestrictsUserns?: number;
}

/** The mapping of the build's user namespace. */
export type RootlessPlan =
  | { mapping: 'subids'; uidMap: IdRange[]; gidMap: IdRange[]; newuidmap: string; newgidmap: string; warnings: string[] }
  | { mapping: 'single'; uidMap: IdRange[]; gidMap: IdRange[]; warnings: string[] };

/** Enough ids for every id a Debian or Alpine image uses (nobody is 65534), as Docker's default. */
export const WANTED_IDS = 65536;

/** Fix for a user without subordinate ids: the line to add, and the command that adds it. */
export function subIdFix(user: string): string {
  return (
    `add a range of ${WANTED_IDS} ids for ${user} to /etc/subuid and /etc/subgid (lines "${user}:100000:${WANTED_IDS}"; ` +
    `as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${user}, with a range no other user has)`
  );
}

/** Refuse when the kernel does not let this user create a user namespace; say which switch to flip. */
function checkUsernsAllowed(f: HostFacts): void {
  const fix = (what: string): never => {
    throw new RootlessError(`hoist runs as ${f.user} (uid ${f.uid}), not root, and builds in a user namespace; ${what}, run hoist as root, or build with no privileges: --isolation proot`, { refused: true });
  };
  if (f.maxUserNamespaces === 0) fix('but user namespaces are disabled here (user.max_user_namespaces = 0). As root: sysctl -w user.max_user_namespaces=28633');
  if (f.unprivilegedUsernsClone === 0) fix('but this kernel forbids unprivileged user namespaces (kernel.unprivileged_userns_clone = 0). As root: sysctl -w kernel.unprivileged_userns_clone=1');
  if (f.apparmorRestrictsUserns === 1) fix('but AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1). As root: sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (or give node an AppArmor profile with "userns,")');
}

/** Namespace ids 1.. follow the subordinate ranges in file order (0 is the user), as rootlesskit and podman map them. */
function rangesAfterRoot(hostId: number, sub: SubIdRange[]): IdRange[] {
  const out: IdRange[] = [{ inside: 0, outside: hostId, count: 1 }];
  let next = 1;
  for (const r of sub.slice(0, 300)) {
    out.push({ inside: next, outside: r.start, count: r.count });
    next += r.count;
  }
  return out;
}

/**
 * How the build's user namespace maps ids: the user becomes root (0) and the user's subordinate
 * ids become 1..N through newuidmap/newgidmap; without them, only 0 (the user) exists, with a
 * warning naming what cannot work and the fix. Throws when user namespaces are not allowed.
 */
export function planRootless(f: HostFacts): RootlessPlan {
  checkUsernsAllowed(f);
  const subU = parseSubIds(f.subuid ?? '', { name: f.user, id: f.uid });
  const subG = parseSubIds(f.subgid ?? '', { name: f.user, id: f.uid });
  const single = (why: string, fix: string): RootlessPlan => ({
    mapping: 'single',
    uidMap: [{ inside: 0, outside: f.uid, count: 1 }],
    gidMap: [{ inside: 0, outside: f.gid, count: 1 }],
    warnings: [
      `rootless build with a single id: ${why}. Only uid/gid 0 exist in the build (they are you, ${f.user}): base images with ` +
        `files of other owners, and RUN steps that chown to or switch to another user (useradd, apt-get, USER), fail. Fix: ${fix}`,
    ],
  });
  if (!f.newuidmap || !f.newgidmap) return single('newuidmap/newgidmap are not installed', `apt-get install uidmap (as root), and ${subIdFix(f.user)}`);
  for (const t of [f.newuidmap, f.newgidmap]) {
    if (!t.privileged) return single(`${t.path} is neither setuid root nor has file capabilities`, `chmod u+s ${t.path} (as root), or reinstall uidmap`);
  }
  if (subU.length === 0 || subG.length === 0) {
    return single(`${f.user} has no range in ${subU.length === 0 ? '/etc/subuid' : '/etc/subgid'}`, subIdFix(f.user));
  }
  const uidMap = rangesAfterRoot(f.uid, subU);
  const gidMap = rangesAfterRoot(f.gid, subG);
  const warnings: string[] = [];
  const have = Math.min(...[uidMap, gidMap].map((m) => m.reduce((n, r) => n + r.count, 0)));
  if (have < WANTED_IDS) warnings.push(`only ids 0-${have - 1} exist in rootless builds (${f.user}'s subordinate ranges are short): files and users with larger ids fail; fix: ${subIdFix(f.user)}`);
  return { mapping: 'subids', uidMap, gidMap, newuidmap: f.newuidmap.path, newgidmap: f.newgidmap.path, warnings };
}

function readText(p: string): string | undefined {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
}

function readNumber(p: string): number | undefined {
  const t = readText(p);
  const n = t === undefined ? NaN : Number(t.trim());
  return Number.isFinite(n) ? n : undefined;
}

const SEARCH = ['/usr/bin', '/bin', '/usr/sbin', '/sbin', '/usr/local/bin'];

/** newuidmap/newgidmap on PATH (or the usual places); setuid root, or a security.capability xattr. */
function findIdMapTool(name: string): IdMapTool | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':').filter((d) => d.startsWith('/')), ...SEARCH];
  const p = dirs.map((d) => path.join(d, name)).find((c) => existsSync(c));
  if (!p) return undefined;
  const st = statSync(p);
  if (st.uid === 0 && (st.mode & 0o4000) !== 0) return { path: p, privileged: true };
  const cap = spawnSync('getfattr', ['-n', 'security.capability', '--only-values', '--', p], { stdio: ['ignore', 'pipe', 'ignore'] });
  return { path: p, privileged: cap.status === 0 && cap.stdout.length > 0 };
}

/** The user's name: the password database, else $USER/$LOGNAME, else the uid. */
function userName(uid: number): string {
  try {
    return os.userInfo().username;
  } catch {
    return process.env.USER ?? process.env.LOGNAME ?? String(uid);
  }
}

export function readHostFacts(): HostFacts {
  const uid = process.geteuid?.() ?? 0;
  const gid = process.getegid?.() ?? 0;
  const f: HostFacts = { uid, gid, user: userName(uid) };
  const opt = <K extends keyof HostFacts>(k: K, v: HostFacts[K] | undefined): void => {
    if (v !== undefined) f[k] = v;
  };
  opt('subuid', readText('/etc/subuid'));
  opt('subgid', readText('/etc/subgid'));
  opt('newuidmap', findIdMapTool('newuidmap'));
  opt('newgidmap', findIdMapTool('newgidmap'));
  opt('maxUserNamespaces', readNumber('/proc/sys/user/max_user_namespaces'));
  opt('unprivilegedUsernsClone', readNumber('/proc/sys/kernel/unprivileged_userns_clone'));
  opt('apparmorRestrictsUserns', readNumber('/proc/sys/kernel/apparmor_restrict_unprivileged_userns'));
  return f;
}
