import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Ownership, type Owner } from '@hoist/snapshotter';
import { inodeKey, type FakedEntry } from './faked-db.js';

/** faked's database before a RUN, from the mount's ownership record, and where each entry came from. */
export interface FakedSeed {
  db: FakedEntry[];
  /** Recorded path -> inode key in the RUN's root. */
  paths: Map<string, string>;
}

/**
 * faked keys its database by inode: every recorded path that exists in `root` (the RUN's root
 * on the host; proot shows the process the same inodes) becomes an entry with its real type and
 * mode and the recorded owner, so that the RUN sees base files with their owners (stat, ls -l)
 * and keeps them when it rewrites them (useradd's /etc/shadow keeps group shadow).
 */
export async function seedFakedDb(root: string, owners: Ownership): Promise<FakedSeed> {
  const db: FakedEntry[] = [];
  const paths = new Map<string, string>();
  const seen = new Set<string>();
  for (const [rel, o] of owners.entries()) {
    const st = await fsp.lstat(path.join(root, rel), { bigint: true }).catch(() => undefined);
    if (!st) continue;
    const key = inodeKey(st.dev, st.ino);
    paths.set(rel, key);
    if (seen.has(key)) continue; // hard links: one inode, one entry
    seen.add(key);
    db.push({ dev: st.dev, ino: st.ino, mode: Number(st.mode), uid: o.uid, gid: o.gid, nlink: Number(st.nlink), rdev: 0n });
  }
  return { db, paths };
}

/** Did the RUN leave faked's database as it was loaded, with every seeded path at its inode? */
async function unchanged(root: string, seed: FakedSeed, byInode: Map<string, Owner>): Promise<boolean> {
  if (byInode.size !== seed.db.length) return false;
  for (const e of seed.db) {
    const o = byInode.get(inodeKey(e.dev, e.ino));
    if (!o || o.uid !== e.uid || o.gid !== e.gid) return false;
  }
  for (const [rel, key] of seed.paths) {
    const st = await fsp.lstat(path.join(root, rel), { bigint: true }).catch(() => undefined);
    if (!st || inodeKey(st.dev, st.ino) !== key) return false;
  }
  return true;
}

/** Who creates a file the record knows nothing of: root (fakeroot's default), or the RUN's USER. */
export type Creator = (parent: { owner: Owner; setgid: boolean }) => Owner;

const S_ISGID = 0o2000n;

/**
 * Every path of `root` with the owner of its inode in `byInode`; an inode not there is new, and
 * `creator`'s (none: root's). Directories are visited before what they hold.
 */
export async function walkOwners(root: string, byInode: Map<string, Owner>, creator?: Creator): Promise<Ownership> {
  const out = new Ownership();
  const visit = async (rel: string, parent: { owner: Owner; setgid: boolean }): Promise<void> => {
    const abs = rel === '' ? root : path.join(root, rel);
    const st = await fsp.lstat(abs, { bigint: true });
    const o = byInode.get(inodeKey(st.dev, st.ino)) ?? creator?.(parent);
    if (o) out.set(rel, o);
    if (!st.isDirectory()) return;
    const here = { owner: o ?? { uid: 0, gid: 0 }, setgid: (st.mode & S_ISGID) !== 0n };
    const names = await fsp.readdir(abs);
    await Promise.all(names.map((n) => visit(rel === '' ? n : `${rel}/${n}`, here)));
  };
  await visit('', { owner: { uid: 0, gid: 0 }, setgid: false });
  return out;
}

/** The owner of every inode of `root` (0:0 unless recorded): before a RUN as a non-root USER. */
export async function inodeOwners(root: string, owners: Ownership): Promise<Map<string, Owner>> {
  const out = new Map<string, Owner>();
  const visit = async (rel: string): Promise<void> => {
    const abs = rel === '' ? root : path.join(root, rel);
    const st = await fsp.lstat(abs, { bigint: true });
    out.set(inodeKey(st.dev, st.ino), owners.get(rel));
    if (!st.isDirectory()) return;
    const names = await fsp.readdir(abs);
    await Promise.all(names.map((n) => visit(rel === '' ? n : `${rel}/${n}`)));
  };
  await visit('');
  return out;
}

/**
 * A RUN as a non-root USER cannot chown (no fakeroot for it), but what it creates is its own, as
 * in a root build: new inodes get its uid and its gid (the directory's in a setgid directory);
 * existing ones keep their owners, at whatever path the RUN moved them to.
 */
export function userCreator(user: { uid: number; gid: number }): Creator {
  return (parent) => ({ uid: user.uid, gid: parent.setgid ? parent.owner.gid : user.gid });
}

/**
 * The record after a RUN: the owners faked saved (seeded ones and every chown the RUN made),
 * found again by path. A file the RUN replaced (a new inode) is root's unless it was chowned;
 * a renamed one keeps its owner at its new path. When nothing changed, no walk is needed.
 */
export async function ownersAfterRun(root: string, seed: FakedSeed, saved: readonly FakedEntry[], before: Ownership): Promise<Ownership> {
  const byInode = new Map<string, Owner>(saved.map((e) => [inodeKey(e.dev, e.ino), { uid: e.uid, gid: e.gid }]));
  if (await unchanged(root, seed, byInode)) {
    const kept = new Ownership();
    for (const [rel, o] of before.entries()) if (seed.paths.has(rel)) kept.set(rel, o);
    return kept;
  }
  return walkOwners(root, byInode);
}

/**
 * Root with --isolation proot: `proot -i` only shows the USER's ids, the process is root, so
 * what a RUN as a non-root USER creates is root's on disk. Give the inodes not in `before` to
 * the user (the group of a setgid directory's), as a root build's runc would have made them.
 */
export async function chownCreated(root: string, before: ReadonlySet<string>, user: { uid: number; gid: number }): Promise<void> {
  const visit = async (abs: string, parent: { gid: number; setgid: boolean }): Promise<void> => {
    const st = await fsp.lstat(abs, { bigint: true });
    let gid = Number(st.gid);
    if (!before.has(inodeKey(st.dev, st.ino))) {
      gid = parent.setgid ? parent.gid : user.gid;
      await fsp.lchown(abs, user.uid, gid);
      // chown clears setuid/setgid of files: the user had set them on its own file
      if ((st.mode & 0o6000n) !== 0n && !st.isSymbolicLink()) await fsp.chmod(abs, Number(st.mode & 0o7777n));
    }
    if (!st.isDirectory()) return;
    const here = { gid, setgid: (st.mode & S_ISGID) !== 0n };
    const names = await fsp.readdir(abs);
    await Promise.all(names.map((n) => visit(path.join(abs, n), here)));
  };
  await visit(root, { gid: 0, setgid: false });
}
