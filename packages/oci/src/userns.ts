import { readFileSync } from 'node:fs';

/** One line of `/proc/<pid>/uid_map` (or gid_map): ids `inside .. inside+count-1` are host ids `outside ..`. */
export interface IdRange {
  inside: number;
  outside: number;
  count: number;
}

/** The id maps of a user namespace other than the initial one. */
export interface UserNamespace {
  uids: IdRange[];
  gids: IdRange[];
}

/** Parse the text of `/proc/<pid>/uid_map` or `gid_map` ("inside outside count" per line). */
export function parseIdMap(text: string): IdRange[] {
  const out: IdRange[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length !== 3) continue;
    const [inside, outside, count] = f.map(Number) as [number, number, number];
    if ([inside, outside, count].every(Number.isSafeInteger)) out.push({ inside, outside, count });
  }
  return out;
}

/** The initial user namespace maps every id to itself: "0 0 4294967295". */
export function isInitialIdMap(ranges: readonly IdRange[]): boolean {
  return ranges.length === 1 && ranges[0]!.inside === 0 && ranges[0]!.outside === 0 && ranges[0]!.count === 4294967295;
}

/** Is `id` (as seen inside the namespace) mapped to a host id? */
export function idMapped(ranges: readonly IdRange[], id: number): boolean {
  return ranges.some((r) => id >= r.inside && id < r.inside + r.count);
}

/** How many ids the namespace has (the sum of its ranges). */
export function idCount(ranges: readonly IdRange[]): number {
  return ranges.reduce((n, r) => n + r.count, 0);
}

/**
 * The user namespace this process runs in, or undefined in the initial one (real root, or an
 * ordinary user outside any namespace). Read from /proc/self: nothing is cached.
 */
export function currentUserNamespace(procSelf = '/proc/self'): UserNamespace | undefined {
  let uids: IdRange[];
  let gids: IdRange[];
  try {
    uids = parseIdMap(readFileSync(`${procSelf}/uid_map`, 'utf8'));
    gids = parseIdMap(readFileSync(`${procSelf}/gid_map`, 'utf8'));
  } catch {
    return undefined; // no /proc: treat as the initial namespace
  }
  if (isInitialIdMap(uids) && isInitialIdMap(gids)) return undefined;
  return { uids, gids };
}

/**
 * The ids of this process when it cannot give files away (not root, in no user namespace: the
 * no-privilege mode of a locked-down pod, where RUN runs under proot). Files it writes are its
 * own whatever the layer says; layers record them as root's (0:0), as proot -0 shows them.
 * Undefined for root, or root of a user namespace, which chown as layers ask.
 */
export function unprivilegedIds(): { uid: number; gid: number } | undefined {
  const uid = process.geteuid?.() ?? 0;
  if (uid === 0) return undefined;
  return { uid, gid: process.getegid?.() ?? 0 };
}
