import { promises as fsp } from 'node:fs';
import { release } from 'node:os';
import * as path from 'node:path';
import { SnapshotError } from './errors.js';
import { runTool } from './sys.js';
import { EBUSY, EINVAL, ENOENT, HelperUnavailable, MNT_DETACH, SyscallError, errnoName, syscalls } from './syscall-helper.js';

/**
 * overlayfs mounts through mount(2) in the syscall helper (util-linux `mount` where it cannot
 * run). The kernel copies mount data into ONE page, so
 * like Docker's overlay2 we keep the option string short: every snapshot has a short link
 * name in one directory (`l/`), the mount runs with that directory as its cwd, and every path in
 * the options is relative to it. With 8-character names a lower costs 9 bytes: ~440 layers fit.
 */
export const MOUNT_DATA_MAX = 4095;

/**
 * Where overlayfs keeps its bookkeeping (opaque dirs): `trusted.overlay.*` when mounted by real
 * root, `user.overlay.*` when mounted inside a user namespace (option `userxattr`, kernel >= 5.11:
 * a namespace root may not write trusted.* xattrs). A snapshot store uses one kind throughout.
 */
export type OverlayXattrs = 'trusted' | 'user';

export function opaqueXattr(x: OverlayXattrs): string {
  return `${x}.overlay.opaque`;
}

/**
 * Options that keep an upper dir a complete, self-contained diff usable as a lower later. With
 * userxattr the kernel refuses redirect_dir=off (it may mean "follow", which needs trusted
 * xattrs); nofollow likewise creates no redirects, so the upper dirs are the same.
 */
const FIXED: Record<OverlayXattrs, string> = {
  trusted: 'index=off,redirect_dir=off,metacopy=off',
  user: 'userxattr,index=off,redirect_dir=nofollow,metacopy=off',
};

/**
 * Writable mounts are `volatile` (kernel >= 5.10): overlayfs then skips syncing its upper
 * filesystem, which it otherwise does at every unmount. That sync is a syncfs(2) of the whole
 * disk the store is on (10-30 ms per layer, more when other programs have written), and it made
 * only committed layers durable: layers unpacked from blobs were never synced, and neither is a
 * page-cache write lost when hoist is killed (-9), the crash the store is built to survive. The
 * marker volatile leaves (`work/work/incompat/volatile`) is in the mount's own work dir, which
 * the commit or release removes; the upper dir becomes a lower-only snapshot, which may be.
 */
export function volatileSupported(kernel = release()): boolean {
  const m = /^(\d+)\.(\d+)/.exec(kernel);
  if (!m) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > 5 || (major === 5 && minor >= 10);
}

export interface OverlaySpec {
  /** Directory the relative paths are relative to (and the mount's cwd). */
  cwd: string;
  /** Lower dirs relative to cwd, TOP FIRST (overlayfs order). */
  lowers: string[];
  upper?: string;
  work?: string;
  target: string;
  /** Default `trusted`. */
  xattrs?: OverlayXattrs;
  /** With an upper dir: mount it `volatile` (see volatileSupported). Default: when the kernel has it. */
  volatile?: boolean;
}

export function overlayOptions(spec: OverlaySpec): string {
  let o = `lowerdir=${spec.lowers.join(':')}`;
  if (spec.upper) o += `,upperdir=${spec.upper},workdir=${spec.work}`;
  o += `,${FIXED[spec.xattrs ?? 'trusted']}`;
  if (spec.upper && (spec.volatile ?? volatileSupported())) o += ',volatile';
  return o;
}

export async function mountOverlay(spec: OverlaySpec): Promise<void> {
  const data = overlayOptions(spec);
  if (data.length > MOUNT_DATA_MAX) {
    throw new SnapshotError('TOO_MANY_LAYERS', `${spec.lowers.length} layers need ${data.length} bytes of overlay mount options; the kernel takes ${MOUNT_DATA_MAX}`);
  }
  if (spec.lowers.length > 500) throw new SnapshotError('TOO_MANY_LAYERS', `overlayfs stacks at most 500 lower layers, not ${spec.lowers.length}`);
  for (const l of spec.lowers) if (/[:,\\]/.test(l)) throw new SnapshotError('MOUNT_FAILED', `lower dir name ${l} cannot be passed to overlayfs`);
  const failure = await mountOnce(data, spec);
  if (failure === undefined) return;
  // a kernel (or a backport) without volatile: the same mount without it
  if (data.endsWith(',volatile')) return mountOverlay({ ...spec, volatile: false });
  throw new SnapshotError('MOUNT_FAILED', `mount -t overlay overlay -o ${data} ${spec.target} failed: ${failure}`);
}

/** One overlay mount attempt: undefined when it is mounted, else why not. */
async function mountOnce(data: string, spec: OverlaySpec): Promise<string | undefined> {
  try {
    await syscalls.mount({ cwd: spec.cwd, source: 'overlay', fstype: 'overlay', data, target: spec.target });
    return undefined;
  } catch (e) {
    if (e instanceof SyscallError) return e.message;
    if (!(e instanceof HelperUnavailable)) throw e;
  }
  const r = await runTool('mount', ['-t', 'overlay', 'overlay', '-o', data, spec.target], { cwd: spec.cwd, code: 'MOUNT_FAILED', allowFail: true });
  return r.status === 0 ? undefined : `exit ${r.status}: ${r.stderr}`;
}

type UnmountResult = 'done' | 'busy';

/** One unmount attempt (lazy: detached); 'done' also when `target` is not (or no longer) a mount point. */
async function unmountOnce(target: string, lazy: boolean): Promise<UnmountResult> {
  try {
    await syscalls.umount(target, lazy ? MNT_DETACH : 0);
    return 'done';
  } catch (e) {
    if (e instanceof SyscallError) {
      if (e.errno === EINVAL || e.errno === ENOENT) return 'done';
      if (e.errno === EBUSY && !lazy) return 'busy';
      throw new SnapshotError('MOUNT_FAILED', `umount ${lazy ? '-l ' : ''}${target}: ${errnoName(e.errno)}`);
    }
    if (!(e instanceof HelperUnavailable)) throw e;
  }
  const r = await runTool('umount', lazy ? ['-l', target] : [target], { allowFail: true, code: 'MOUNT_FAILED' });
  if (r.status === 0 || /not mounted|no mount point|not found/i.test(r.stderr)) return 'done';
  if (lazy) throw new SnapshotError('MOUNT_FAILED', `umount -l ${target} failed (exit ${r.status}): ${r.stderr}`);
  return 'busy';
}

export async function unmount(target: string): Promise<void> {
  for (let i = 0; ; i++) {
    if ((await unmountOnce(target, false)) === 'done') return;
    if (i >= 20) {
      // still busy (a process keeps a file open): detach it so the store stays usable
      await unmountOnce(target, true);
      return;
    }
    await new Promise((r2) => setTimeout(r2, 25 * (i + 1)));
  }
}

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

/** Mount points at or below `dir`, deepest first. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const info = await fsp.readFile('/proc/self/mountinfo', 'utf8');
  const prefix = path.resolve(dir) + '/';
  const out: string[] = [];
  for (const line of info.split('\n')) {
    const f = line.split(' ');
    if (f.length < 5) continue;
    const mp = unescapeMountinfo(f[4]!);
    if (mp.startsWith(prefix)) out.push(mp);
  }
  return out.sort((a, b) => b.length - a.length);
}

/** Can overlayfs be mounted here (root or a user namespace's root, kernel support, a backing fs that takes the xattrs)? */
export async function probeOverlay(d: string, xattrs: OverlayXattrs = 'trusted'): Promise<boolean> {
  await fsp.mkdir(d, { recursive: true });
  try {
    for (const n of ['l1', 'l2', 'u', 'w', 'm']) await fsp.mkdir(path.join(d, n));
    await fsp.writeFile(path.join(d, 'l1', 'f'), 'x');
    try {
      await mountOverlay({ cwd: d, lowers: ['l1', 'l2'], upper: 'u', work: 'w', target: path.join(d, 'm'), xattrs });
    } catch {
      return false;
    }
    try {
      await fsp.rm(path.join(d, 'm', 'f'));
      await fsp.mkdir(path.join(d, 'm', 'f'));
      const st = await fsp.lstat(path.join(d, 'm', 'f'));
      return st.isDirectory();
    } catch {
      return false;
    } finally {
      await unmount(path.join(d, 'm'));
    }
  } finally {
    await fsp.rm(d, { recursive: true, force: true });
  }
}
