import { existsSync, promises as fsp, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { currentUserNamespace, statOrUndefined } from '@hoist/oci';
import { listNames, syscalls, type SyscallHelper } from '@hoist/snapshotter';

/** Where the cgroup hierarchies are mounted. */
export const CGROUP_FS = '/sys/fs/cgroup';

/**
 * Every cgroup directory of the container `id`: runc's cgroupfs driver puts a container with
 * `cgroupsPath: /hoist/<id>` at `<hierarchy>/hoist/<id>` in each v1 hierarchy (cpu, memory,
 * …, and `unified` on hybrid hosts), or at `/sys/fs/cgroup/hoist/<id>` on a pure v2 host.
 *
 * Synchronous on purpose: every command's start scans for leftovers (issue 16), a dozen
 * listings of tiny directories that nearly always find nothing. Measured in a fresh process
 * (reclaimStore on a store with nothing to reclaim), the scan took 0.7 ms this way against
 * 1.4-2.7 ms as awaited calls, sequential or all at once alike: the cost is each call's
 * promise and thread-pool round trip, not the kernel's work.
 */
export function containerCgroups(match: (name: string) => boolean, fsRoot = CGROUP_FS): string[] {
  const parents = [path.join(fsRoot, 'hoist'), ...listNames(fsRoot).map((h) => path.join(fsRoot, h, 'hoist'))];
  const out: string[] = [];
  for (const parent of parents) {
    for (const name of listNames(parent)) {
      if (!match(name)) continue;
      const dir = path.join(parent, name);
      if (statOrUndefined(dir)?.isDirectory()) out.push(dir);
    }
  }
  return out;
}

async function procsOf(dir: string): Promise<number[]> {
  const text = await fsp.readFile(path.join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map(Number).filter((n) => Number.isSafeInteger(n) && n > 0);
}

/** A frozen process cannot die: thaw the cgroup first (v1 freezer, v2 cgroup.freeze), where that file exists. */
async function thaw(dir: string): Promise<void> {
  await fsp.writeFile(path.join(dir, 'freezer.state'), 'THAWED', { flag: 'r+' }).catch(() => undefined);
  await fsp.writeFile(path.join(dir, 'cgroup.freeze'), '0', { flag: 'r+' }).catch(() => undefined);
}

/**
 * Kill what still runs in a container's cgroup (its owner is gone), then remove the cgroup and
 * any child cgroups. True when the directory is gone.
 */
export async function removeCgroup(dir: string, attempts = 100): Promise<boolean> {
  for (const name of await fsp.readdir(dir).catch(() => [] as string[])) {
    const child = path.join(dir, name);
    if ((await fsp.lstat(child).catch(() => undefined))?.isDirectory()) await removeCgroup(child, attempts);
  }
  await thaw(dir);
  for (let i = 0; i < attempts; i++) {
    const pids = await procsOf(dir);
    if (pids.length === 0) {
      try {
        await fsp.rmdir(dir);
        return true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return true;
        // EBUSY: the last process is still exiting
      }
    }
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

/**
 * The `cgroup.procs` of the cgroup this process is in, in the first hierarchy of
 * /proc/self/cgroup that is mounted where runc looks (`/sys/fs/cgroup/<controllers>`, the v2
 * root, or `unified` on a hybrid host); undefined when none is.
 */
export function ownCgroupProcs(selfCgroup = '/proc/self/cgroup', fsRoot = CGROUP_FS): string | undefined {
  let text: string;
  try {
    text = readFileSync(selfCgroup, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const m = /^\d+:([^:]*):(\/.*)$/.exec(line);
    if (!m) continue;
    const [, controllers, where] = m as unknown as [string, string, string];
    const mounts = controllers === '' ? [fsRoot, path.join(fsRoot, 'unified')] : [path.join(fsRoot, controllers.replace(/^name=/, ''))];
    for (const dir of mounts) {
      const file = path.join(dir, where, 'cgroup.procs');
      if (existsSync(file)) return file;
    }
  }
  return undefined;
}

/**
 * Before the runtime puts a RUN's process into its cgroups (root hoist: a rootless runtime
 * makes none): have the syscall helper keep the kernel's cgroup attach lock warm, so that the
 * RCU grace period its first taker waits out (8-14 ms measured on this host, issue 16) passes
 * beside the build, not inside the runtime's start. Best effort: where the helper or the file
 * is missing, the runtime waits as it always did.
 */
export function warmCgroupAttach(helper: SyscallHelper = syscalls): void {
  if (!helper.usable || currentUserNamespace()) return;
  const file = ownCgroupProcs();
  if (file) helper.warmCgroupLock(file).catch(() => undefined);
}
