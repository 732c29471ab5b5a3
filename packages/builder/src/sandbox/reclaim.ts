import { spawnSync } from 'node:child_process';
import { readFileSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { pidAlive, storePaths } from '@hoist/oci';
import { cleanupStaleWork, listNames, mountsUnder, unmount } from '@hoist/snapshotter';
import { CGROUP_FS, containerCgroups, removeCgroup } from './cgroups.js';
import { findRuntime } from './runtime.js';
import { killProotGroups } from './proot-groups.js';

/**
 * What a hoist process leaves in a store while it works, each named with its pid so that the
 * leftovers of a killed process can be told from a live one's:
 *   runtime/<runc|crun>/hoist-<pid>-<hex>   runtime state of a RUN's container
 *   /sys/fs/cgroup/…/hoist/hoist-<pid>-<hex>  its cgroups (host-wide, not per store)
 *   tmp/sandbox-<pid>-<hex>                  private tmpfs: bundles (config.json) and secrets
 *   tmp/<what>-<pid>[-<hex>]                 etc files, heredocs, bind scratch copies, …
 *   snapshots/mounts/<pid>-<hex>, snapshots/tmp/<what>-<pid>-<hex>   rootfs mounts, unpacking
 *   oci/tmp/<what>-<pid>-<hex>               blobs being written
 *   active/<shared|exclusive>-<pid>          store leases
 */
export interface ReclaimReport {
  /** Dead processes whose leftovers were found. */
  pids: number[];
  containers: number;
  cgroups: number;
  /** Files and directories removed (mount points included). */
  paths: number;
  unmounted: number;
}

const emptyReport = (): ReclaimReport => ({ pids: [], containers: 0, cgroups: 0, paths: 0, unmounted: 0 });

/** The pid in a name: `<what>-<pid>-<hex>`, `<pid>-<hex>` or `<what>-<pid>`. */
export function ownerPid(name: string): number | undefined {
  const m = /(?:^|-)(\d+)-[0-9a-f]+$/.exec(name) ?? /^[a-z]+-(\d+)$/.exec(name);
  if (!m) return undefined;
  const pid = Number(m[1]);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/** A process that no longer runs: gone, or a zombie its parent has not reaped yet. */
export function processGone(pid: number): boolean {
  if (!pidAlive(pid)) return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

async function entries(dir: string): Promise<string[]> {
  return fsp.readdir(dir).catch(() => [] as string[]);
}

const isContainerOf = (pid: number) => (name: string): boolean => name.startsWith(`hoist-${pid}-`);

/** Kill and delete the runtime's containers `hoist-<pid>-*`, then drop any state the runtime left. */
async function reclaimContainers(root: string, pid: number, report: ReclaimReport): Promise<void> {
  const runtimeDir = path.join(root, 'runtime');
  for (const rtName of await entries(runtimeDir)) {
    const stateDir = path.join(runtimeDir, rtName);
    const ids = (await entries(stateDir)).filter(isContainerOf(pid));
    if (ids.length === 0) continue;
    const bin = findRuntime(rtName);
    for (const id of ids) {
      if (bin) {
        // `delete --force` kills the container (SIGKILL to its init: the whole PID namespace goes)
        spawnSync(bin, ['--root', stateDir, 'kill', id, 'KILL'], { stdio: 'ignore', timeout: 10_000 });
        spawnSync(bin, ['--root', stateDir, 'delete', '--force', id], { stdio: 'ignore', timeout: 30_000 });
      }
      await fsp.rm(path.join(stateDir, id), { recursive: true, force: true });
      report.containers++;
    }
  }
}

/** Remove `dir/<name>` for each name owned by `pid`, unmounting what is mounted there first. */
async function reclaimEntries(dir: string, pid: number, report: ReclaimReport): Promise<void> {
  const owned = (await entries(dir)).filter((n) => ownerPid(n) === pid);
  if (owned.length === 0) return;
  const mounts = await mountsUnder(dir);
  for (const name of owned) {
    const p = path.join(dir, name);
    for (const mp of mounts.filter((m) => m === p || m.startsWith(p + '/'))) {
      await unmount(mp).catch(() => undefined);
      report.unmounted++;
    }
    await fsp.rm(p, { recursive: true, force: true }).catch(() => undefined);
    report.paths++;
  }
}

/**
 * Reclaim everything the hoist process `pid` left in the store `root` and on the host: its
 * containers (and every process in them), cgroups, bundles, secrets, mounts and temp files.
 * The caller knows the process is gone (see `reclaimStore`, and the watchdog).
 */
export interface ReclaimOptions {
  /** Where the cgroup hierarchies are mounted (tests use a fake). */
  cgroupFs?: string;
  /** Add to this report. */
  report?: ReclaimReport;
}

export async function reclaimProcess(root: string, pid: number, opts: ReclaimOptions = {}): Promise<ReclaimReport> {
  const report = opts.report ?? emptyReport();
  const cgroupFs = opts.cgroupFs ?? CGROUP_FS;
  if (!report.pids.includes(pid)) report.pids.push(pid);
  await reclaimContainers(root, pid, report);
  report.containers += await killProotGroups(path.join(root, 'tmp'), pid);
  for (const dir of containerCgroups(isContainerOf(pid), cgroupFs)) {
    if (await removeCgroup(dir)) report.cgroups++;
  }
  const paths = storePaths(root);
  await reclaimEntries(path.join(paths.tmp, 'bundles'), pid, report);
  await reclaimEntries(paths.tmp, pid, report);
  const snaps = await cleanupStaleWork(paths.snapshots, (p) => p === pid).catch(() => ({ unmounted: 0, removed: 0 }));
  report.unmounted += snaps.unmounted;
  report.paths += snaps.removed;
  await reclaimEntries(path.join(paths.oci, 'tmp'), pid, report);
  await reclaimEntries(paths.leases, pid, report);
  return report;
}

/** Pids named by the per-process artefacts of a store (and by hoist's cgroups on this host). */
function ownersIn(root: string, cgroupFs: string): Set<number> {
  const pids = new Set<number>();
  const add = (names: string[]): void => {
    for (const n of names) {
      const pid = ownerPid(n);
      if (pid !== undefined) pids.add(pid);
    }
  };
  // synchronous listings, as containerCgroups explains: this runs at every start, finds nothing
  for (const rt of listNames(path.join(root, 'runtime'))) add(listNames(path.join(root, 'runtime', rt)));
  for (const d of ['tmp', 'tmp/bundles', 'snapshots/mounts', 'snapshots/tmp', 'oci/tmp', 'active']) add(listNames(path.join(root, d)));
  add(containerCgroups((n) => n.startsWith('hoist-'), cgroupFs).map((d) => path.basename(d)));
  return pids;
}

/**
 * Reclaim what dead hoist processes left (see `reclaimProcess`); live processes' work, this
 * process's included, is never touched. Runs at every start of a command that opens the store,
 * and before `prune` and `fsck`.
 */
export async function reclaimStore(root: string, opts: Pick<ReclaimOptions, 'cgroupFs'> = {}): Promise<ReclaimReport> {
  const report = emptyReport();
  for (const pid of ownersIn(root, opts.cgroupFs ?? CGROUP_FS)) {
    if (pid === process.pid || !processGone(pid)) continue;
    await reclaimProcess(root, pid, { ...opts, report });
  }
  return report;
}
