import { promises as fsp, lstatSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync, type Stats } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { OciError } from './errors.js';

/** Write a file atomically: temp file in the same directory, fsync, rename. */
export interface AtomicWriteOptions {
  mode?: number;
  /**
   * fsync the data before the rename (default true). Only for files that are a cache whose
   * reader validates them (a torn or empty file after a crash reads as absent, and losing one
   * costs only recomputing it): the rename still never shows a half-written file while running.
   */
  sync?: boolean;
}

export async function writeFileAtomic(file: string, data: Uint8Array | string, o: number | AtomicWriteOptions = 0o644): Promise<void> {
  const { mode = 0o644, sync = true } = typeof o === 'number' ? { mode: o } : o;
  if (!sync && data.length <= SMALL) return writeSmallAtomic(file, data, mode);
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const tmp = tempBeside(file);
  const fh = await fsp.open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    if (sync) await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fsp.rename(tmp, file);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
}

/** A fresh temp name next to `file` (same directory: the rename into place is atomic). */
function tempBeside(file: string): string {
  return path.join(path.dirname(file), `.tmp-${path.basename(file)}-${randomBytes(6).toString('hex')}`);
}

/** Size up to which an unsynced atomic write is made synchronously (the records it serves are well under). */
const SMALL = 64 * 1024;

/**
 * An atomic write without fsync, synchronous: a mkdir, an open+write+close and a rename, each
 * ~10-50 µs, where each awaited call waits its turn in the thread pool and then in the event
 * loop (~0.1-0.4 ms apiece during a build; a build writes several of these records per step,
 * issue 16). Nothing here waits on the disk (no fsync).
 */
function writeSmallAtomic(file: string, data: Uint8Array | string, mode: number): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = tempBeside(file);
  try {
    writeFileSync(tmp, data, { flag: 'wx', mode });
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Whether a process exists (EPERM: it does, owned by someone else). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Run `fn` holding an exclusive lock file (`O_EXCL`), so that two hoist processes sharing a
 * store never interleave a read-modify-write. A lock whose owner process is gone is taken over.
 */
export async function withFileLock<T>(lockFile: string, fn: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const start = Date.now();
  // the lock file's creation and removal are synchronous (issue 16): a few bytes and metadata,
  // where each awaited call (mkdir, open, write, close, rm) was a thread-pool round trip at the
  // end of every build that tags its image
  mkdirSync(path.dirname(lockFile), { recursive: true });
  for (let delay = 5; ; delay = Math.min(delay * 2, 200)) {
    try {
      writeFileSync(lockFile, String(process.pid), { flag: 'wx', mode: 0o644 });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = Number.parseInt(await fsp.readFile(lockFile, 'utf8').catch(() => ''), 10);
      if (Number.isFinite(owner) && owner > 0 && !pidAlive(owner)) {
        await fsp.rm(lockFile, { force: true });
        continue;
      }
      if (Date.now() - start > timeoutMs) {
        throw new OciError('STORE_LOCKED', `${lockFile} is held by process ${owner}; wait for it or remove the file if that process is gone`);
      }
      await new Promise((r) => setTimeout(r, delay));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lockFile, { force: true });
  }
}

/**
 * Create `dir` if missing and make it reachable by its owner only (0700), as containerd and
 * dockerd keep their data roots: a store holds unpacked images, with setuid files and device
 * nodes that no other user may reach. A directory made before (e.g. 0755) is tightened. Parents
 * are created with the usual mode. Returns the directory's stat (taken before any chmod).
 */
export async function ensurePrivateDir(dir: string): Promise<Stats> {
  // the usual case (issue 16): the directory is there and private already; one stat proves it
  // (synchronous: a stat costs microseconds, an awaited one a thread-pool round trip)
  const seen = statOrUndefined(dir);
  if (seen?.isDirectory() && (seen.mode & 0o7777) === 0o700) return seen;
  await fsp.mkdir(path.dirname(dir), { recursive: true });
  await fsp.mkdir(dir, { mode: 0o700 }).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw e;
  });
  const st = await fsp.stat(dir);
  if ((st.mode & 0o7777) === 0o700) return st;
  try {
    await fsp.chmod(dir, 0o700);
    return st;
  } catch (e) {
    const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
    throw new OciError('STORE_PERMISSIONS', `${dir} is open to other users (mode ${mode}) and cannot be made private (${(e as Error).message}): run \`chmod 700 ${dir}\` as its owner, or use another --root`, { cause: e });
  }
}

/** A path's stat, undefined when it cannot be had (missing, not reachable); synchronous. */
export function statOrUndefined(p: string): Stats | undefined {
  try {
    return statSync(p);
  } catch {
    return undefined;
  }
}

/** lstat(2) of `p`, or undefined where it cannot be had (missing, not a directory on the way). */
export function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

/** Apparent size of a tree (files and symlinks; hard links counted once); 0 when it is missing. */
export async function treeSize(root: string): Promise<number> {
  const seen = new Set<string>();
  let total = 0;
  const walk = async (p: string): Promise<void> => {
    let st;
    try {
      st = await fsp.lstat(p, { bigint: true });
    } catch {
      return;
    }
    if (st.isDirectory()) {
      const names = await fsp.readdir(p).catch(() => [] as string[]);
      for (const n of names) await walk(path.join(p, n));
      return;
    }
    if (st.nlink > 1n) {
      const k = `${st.dev}:${st.ino}`;
      if (seen.has(k)) return;
      seen.add(k);
    }
    total += Number(st.size);
  };
  await walk(root);
  return total;
}

export async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await fsp.readdir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw e;
  }
}
