import { chmodSync, mkdirSync, promises as fsp, constants as fsc, utimesSync } from 'node:fs';
import * as path from 'node:path';
import pLimit from 'p-limit';
import { lstatOrUndefined, statOrUndefined, unprivilegedIds } from '@hoist/oci';
import { BuildError } from './errors.js';
import { secureJoin } from './rootfs.js';
import type { SourceItem, SourceEntry } from './sources.js';
import { applyChmod } from './chmod.js';
import { linkToCopied, noteCopied, type HardLinks } from './hardlinks.js';
import { ownerIn, setOwner, type OwnedRoot } from './owner.js';
import type { Ownership } from '@hoist/snapshotter';

export interface CopyOptions {
  /** Absolute destination inside the image (WORKDIR already applied). */
  dest: string;
  /** Owner for copied files and created directories (default 0:0). */
  owner?: { uid: number; gid: number };
  /**
   * Keep the sources' owners when no `--chown` is given (COPY --from a stage or image); files
   * from the build context always belong to 0:0.
   */
  preserveOwner?: boolean;
  /** No privileges: the destination mount's ownership record (chowns go there). */
  owners?: Ownership | undefined;
  /** No privileges: the source root and its record, for preserveOwner. */
  source?: OwnedRoot | undefined;
  chmod?: string;
  /** mtime for directories the copy creates (seconds). */
  createdTime: number;
}

/**
 * Copy matched sources into `root` (a mounted snapshot) with BuildKit's rules: a directory's
 * contents are copied, not the directory; a destination ending in `/` (or an existing
 * directory) receives files by name. Each match is copied on its own, in order, so several
 * files into a destination without `/` each write that path and the last one wins. Files
 * hard-linked to each other within one match stay linked.
 */
export async function copyInto(root: string, items: SourceItem[], o: CopyOptions): Promise<void> {
  const owner = o.owner ?? { uid: 0, gid: 0 };
  const dirs = { owner, mtime: o.createdTime, owners: o.owners };
  const parents: ParentDirs = new Map();
  const creator = creatorIds();
  for (const item of items) {
    const links: HardLinks = new Map();
    let base: string;
    if (item.destRel !== undefined) {
      // COPY --parents: the item keeps its path below the destination
      base = path.posix.join(o.dest, item.destRel);
      if (item.stat.isDirectory()) await mkdirs(root, base, dirs);
    } else if (item.stat.isDirectory()) {
      // a directory's contents are copied; the destination directory itself is created 0755
      // (owned by --chown's user), never given the source directory's mode or owner
      base = o.dest;
      await mkdirs(root, base, dirs);
    } else {
      const target = await secureJoin(root, o.dest);
      const existingDir = statOrUndefined(target)?.isDirectory() ?? false;
      base = o.dest.endsWith('/') || existingDir ? path.posix.join(o.dest, item.name) : o.dest;
    }
    const files = new FileCopies();
    const fresh: FreshDirs = new Map();
    for (const e of item.entries) {
      if (e.rel === '' && item.stat.isDirectory()) continue;
      const inImage = e.rel === '' ? base : path.posix.join(base, e.rel);
      const own = o.owner ?? (o.preserveOwner ? ownerIn(o.source, e.abs, e.stat) : owner);
      const copy = (): Promise<void> => copyEntry(root, { inImage, entry: e, owner: own, links, parents, fresh, creator }, o);
      if (e.stat.isFile() && e.stat.nlink <= 1) files.add(copy);
      else {
        await files.settle();
        await copy();
      }
    }
    await files.settle();
  }
}

/**
 * The plain files of one source item, copied FILE_COPIES at a time: each is a handful of fs
 * calls whose round trips to libuv's thread pool dominate a COPY of many small files, and the
 * files of one walk are independent (their parents come first in the walk; their targets are
 * distinct). Directories, symlinks and hard-linked files wait for every copy before them.
 * `settle` waits for all of them, so nothing still writes when the snapshot is unmounted, and
 * then throws the first error.
 */
const FILE_COPIES = 16;

class FileCopies {
  private readonly limit = pLimit(FILE_COPIES);
  private pending: Promise<void>[] = [];
  private failed = false;

  add(copy: () => Promise<void>): void {
    const p = this.limit(async () => {
      if (this.failed) return; // the copy fails anyway: the queued files are not started
      await copy().catch((e: unknown) => {
        this.failed = true;
        throw e;
      });
    });
    p.catch(() => undefined); // handled: settle() reports it
    this.pending.push(p);
  }

  async settle(): Promise<void> {
    const results = await Promise.allSettled(this.pending);
    this.pending = [];
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
}

/**
 * Create the directory `dirInImage` (and its missing parents) owned by `owner`, stamped `mtime`.
 * Symlinks on the way are resolved inside the root first, so a dangling link leads to the
 * directories its target names, created as BuildKit's MkdirAll does. Returns the host path.
 */
export async function mkdirs(root: string, dirInImage: string, o: { owner: { uid: number; gid: number }; mtime: number; owners?: Ownership | undefined }): Promise<string> {
  const { owner, mtime } = o;
  const abs = await secureJoin(root, dirInImage);
  let cur = root;
  // a few directories, each a few metadata calls: synchronous, as secureJoin's (issue 16)
  for (const p of path.relative(root, abs).split(path.sep).filter(Boolean)) {
    cur = path.join(cur, p);
    const st = lstatOrUndefined(cur);
    if (st?.isDirectory()) continue;
    if (st) throw new BuildError('COPY_SOURCE_NOT_FOUND', `cannot copy to ${dirInImage}: ${imagePath(root, cur)} exists in the image and is not a directory`);
    mkdirSync(cur, { mode: 0o755 });
    chmodSync(cur, 0o755);
    await setOwner(cur, owner.uid, owner.gid, { root, owners: o.owners });
    utimesSync(cur, mtime, mtime);
  }
  return abs;
}

/**
 * The owner files this process creates get for real (its effective ids), when it can chown;
 * undefined in the no-privilege mode, where setOwner may keep owners elsewhere.
 */
function creatorIds(): { uid: number; gid: number } | undefined {
  return unprivilegedIds() === undefined ? { uid: process.geteuid?.() ?? 0, gid: process.getegid?.() ?? 0 } : undefined;
}

/** `abs` (below `root`) as the image sees it. */
function imagePath(root: string, abs: string): string {
  return `/${path.relative(root, abs).split(path.sep).join('/')}`;
}

/**
 * Parent directories one copy has made sure of (image path -> host path), so that the
 * 200 files of a directory do not resolve and lstat its path 200 times. Only this copy changes
 * the root meanwhile: it is forgotten whenever the copy removes a symlink or a directory or
 * makes a symlink, the only ways a remembered path could come to lead elsewhere.
 */
type ParentDirs = Map<string, Promise<string>>;

/**
 * Directories (image paths) one source item created itself, empty until then: the item's other
 * entries are distinct paths, so nothing can exist below them that needs replacing and the
 * files copied there skip the lookup of an existing target (the exclusive create would still
 * refuse one). The value: whether the directory is setgid (its new files take its group).
 */
type FreshDirs = Map<string, boolean>;

interface CopyJob {
  inImage: string;
  entry: SourceEntry;
  owner: { uid: number; gid: number };
  links: HardLinks;
  parents: ParentDirs;
  fresh: FreshDirs;
  /** creatorIds(), once per copy. */
  creator: { uid: number; gid: number } | undefined;
}

/** Files copied at the same time share one mkdirs of their parent (it fails for both or neither). */
function parentDir(root: string, job: { inImage: string; owner: { uid: number; gid: number }; parents: ParentDirs }, o: CopyOptions): Promise<string> {
  const dir = path.posix.dirname(job.inImage);
  let abs = job.parents.get(dir);
  if (!abs) {
    abs = mkdirs(root, dir, { owner: job.owner, mtime: o.createdTime, owners: o.owners });
    job.parents.set(dir, abs);
  }
  return abs;
}

async function copyEntry(root: string, job: CopyJob, o: CopyOptions): Promise<void> {
  const { inImage, entry: e, owner } = job;
  const where = { root, owners: o.owners };
  const target = path.join(await parentDir(root, job, o), path.posix.basename(inImage));
  const st = e.stat;
  const parentSetgid = job.fresh.get(path.posix.dirname(inImage));
  const existing = parentSetgid !== undefined ? undefined : await fsp.lstat(target).catch(() => undefined);
  // a symlink or a directory about to be replaced may be on a remembered path
  if (existing && (existing.isSymbolicLink() || (existing.isDirectory() && !st.isDirectory()))) job.parents.clear();
  const mode = o.chmod ? applyChmod(st.mode & 0o7777, o.chmod, st.isDirectory()) : st.mode & 0o7777;
  if (st.isDirectory()) {
    if (existing && !existing.isDirectory()) await fsp.rm(target, { recursive: true, force: true });
    if (!existing || !existing.isDirectory()) {
      await fsp.mkdir(target);
      job.fresh.set(inImage, (mode & 0o2000) !== 0);
    }
    await setOwner(target, owner.uid, owner.gid, where);
    await fsp.chmod(target, mode);
    await fsp.utimes(target, st.atime, st.mtime);
    return;
  }
  if (existing) await fsp.rm(target, { recursive: existing.isDirectory(), force: true });
  if (st.isSymbolicLink()) {
    job.parents.clear();
    await fsp.symlink(e.linkTarget ?? (await fsp.readlink(e.abs)), target);
    await setOwner(target, owner.uid, owner.gid, where);
    await fsp.lutimes(target, st.atime, st.mtime);
    return;
  }
  if (!st.isFile()) return; // sockets, FIFOs and devices in a context are not copied
  if (await linkToCopied(job.links, e, target)) return;
  // the target is gone (removed above, or in a fresh directory): create it exclusively
  await fsp.copyFile(e.abs, target, fsc.COPYFILE_FICLONE | fsc.COPYFILE_EXCL);
  // a file made in a fresh directory without setgid belongs to this process's euid:egid already
  // (never skipped without privileges: there the owner goes into the ownership record)
  const mine = job.creator !== undefined && owner.uid === job.creator.uid && owner.gid === job.creator.gid;
  if (parentSetgid !== false || !mine) await setOwner(target, owner.uid, owner.gid, where);
  // copyFile gave the copy the source's mode; only a changed mode, or setuid/setgid bits
  // (cleared by the chown), need another chmod
  if (mode !== (st.mode & 0o7777) || (mode & 0o6000) !== 0) await fsp.chmod(target, mode);
  await fsp.utimes(target, st.atime, st.mtime);
  await noteCopied(job.links, e, target);
}
