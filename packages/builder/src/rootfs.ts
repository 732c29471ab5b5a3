import { promises as fsp, readlinkSync, type Stats } from 'node:fs';
import { lstatOrUndefined } from '@hoist/oci';
import * as path from 'node:path';
import { BuildError } from './errors.js';

/** An lstat that answers undefined where the path cannot be lstat'ed (missing, not a directory on the way). */
export type Lstat = (p: string) => Promise<Stats | undefined>;

/**
 * Synchronous underneath (issue 16): a path inside a mounted root is resolved one component at
 * a time, each lstat microseconds of kernel work; awaited, each was a thread-pool round trip.
 */
const plainLstat: Lstat = (p) => Promise.resolve(lstatOrUndefined(p));

/**
 * One lstat per path, for a tree that nothing changes while it is used (a RUN's root between
 * its mount and its process): a path asked again, or by a concurrent caller, gets the answer
 * of the first call. Symlinks are reported as symlinks, so a check made with it is as strict.
 * `inner` makes the first call (a test counts calls through it).
 */
export function lstatOnce(inner: Lstat = plainLstat): Lstat {
  const seen = new Map<string, Promise<Stats | undefined>>();
  return (p) => {
    let r = seen.get(p);
    if (!r) {
      r = inner(p);
      seen.set(p, r);
    }
    return r;
  };
}

export interface SecureJoinOptions {
  /** Follow a symlink in the last component (default true). */
  followLast?: boolean;
  /** How paths are lstat'ed (default: every time; see lstatOnce). */
  lstat?: Lstat;
}

/**
 * Resolve `p` inside `root` as the sandbox would see it: symlinks (absolute or relative) are
 * followed but never lead out of `root` (an absolute target is re-rooted, `..` stops at the
 * root), like securejoin. The last component is followed unless `followLast` is false.
 */
export async function secureJoin(root: string, p: string, o: SecureJoinOptions = {}): Promise<string> {
  const lstat = o.lstat ?? plainLstat;
  const parts = p.split('/').filter((c) => c !== '' && c !== '.');
  const resolved: string[] = [];
  let hops = 0;
  while (parts.length > 0) {
    const c = parts.shift()!;
    if (c === '..') {
      resolved.pop();
      continue;
    }
    const candidate = path.join(root, ...resolved, c);
    if (parts.length === 0 && o.followLast === false) {
      resolved.push(c);
      break;
    }
    const st = await lstat(candidate);
    if (!st?.isSymbolicLink()) {
      resolved.push(c);
      continue;
    }
    if (++hops > 255) throw new BuildError('COPY_OUTSIDE_CONTEXT', `too many levels of symbolic links resolving ${p}`);
    const target = readlinkSync(candidate);
    if (target.startsWith('/')) resolved.length = 0;
    parts.unshift(...target.split('/').filter((x) => x !== '' && x !== '.'));
  }
  return path.join(root, ...resolved);
}

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

async function readLines(root: string, file: string): Promise<string[][]> {
  try {
    const text = await fsp.readFile(await secureJoin(root, file), 'utf8');
    return text
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.startsWith('#'))
      .map((l) => l.split(':'));
  } catch {
    return [];
  }
}

export async function readPasswd(root: string): Promise<PasswdEntry[]> {
  return (await readLines(root, '/etc/passwd'))
    .filter((f) => f.length >= 4)
    .map((f) => ({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? '/' }));
}

export async function readGroup(root: string): Promise<GroupEntry[]> {
  return (await readLines(root, '/etc/group'))
    .filter((f) => f.length >= 3)
    .map((f) => ({ name: f[0]!, gid: Number(f[2]), members: (f[3] ?? '').split(',').filter(Boolean) }));
}

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
  name?: string;
}

const NUMERIC = /^\d+$/;

/**
 * Resolve `user[:group]` (names or ids) against the root's /etc/passwd and /etc/group, as
 * Docker does (libcontainer's GetExecUser + BuildKit's executor): a numeric uid need not exist,
 * a name must; an empty user is uid 0 looked up like any other; supplementary groups come from
 * /etc/group membership when no group is given, and the primary gid always leads them.
 */
export async function resolveUser(root: string, spec: string): Promise<ResolvedUser> {
  const [userPart = '', groupPart] = spec.split(':', 2);
  // read side by side (neither read fails: a missing file is an empty list)
  const [passwd, groups] = await Promise.all([readPasswd(root), readGroup(root)]);
  let uid = 0;
  let gid = 0;
  let name: string | undefined;
  let home = '/';
  const entry =
    userPart === '' ? passwd.find((p) => p.uid === 0) : NUMERIC.test(userPart) ? passwd.find((p) => p.uid === Number(userPart)) : passwd.find((p) => p.name === userPart);
  if (entry) {
    uid = entry.uid;
    gid = entry.gid;
    name = entry.name;
    home = entry.home;
  } else if (userPart !== '') {
    if (!NUMERIC.test(userPart)) throw new BuildError('USER_NOT_FOUND', `unable to find user ${userPart}: no matching entries in passwd file`);
    uid = Number(userPart);
  }
  let additionalGids: number[] = [];
  if (groupPart !== undefined && groupPart !== '') {
    const g = NUMERIC.test(groupPart) ? groups.find((x) => x.gid === Number(groupPart)) : groups.find((x) => x.name === groupPart);
    if (g) gid = g.gid;
    else if (NUMERIC.test(groupPart)) gid = Number(groupPart);
    else throw new BuildError('USER_NOT_FOUND', `unable to find group ${groupPart}: no matching entries in group file`);
  } else if (name) {
    additionalGids = groups.filter((g) => g.members.includes(name!)).map((g) => g.gid);
  }
  if (!additionalGids.includes(gid)) additionalGids.unshift(gid);
  const r: ResolvedUser = { uid, gid, additionalGids, home };
  if (name) r.name = name;
  return r;
}

/** `--chown` resolution: like resolveUser, but a name-only group defaults to the user's primary group. */
export async function resolveChown(root: string, spec: string): Promise<{ uid: number; gid: number }> {
  const [u = '', g] = spec.split(':', 2);
  const user = await resolveUser(root, u);
  if (g === undefined || g === '') return { uid: user.uid, gid: NUMERIC.test(u) ? user.uid : user.gid };
  const grp = await resolveUser(root, `${u}:${g}`);
  return { uid: user.uid, gid: grp.gid };
}
