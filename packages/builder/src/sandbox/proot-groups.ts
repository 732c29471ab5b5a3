import { readFileSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';

/**
 * A RUN under proot is a process group of its own (proot and every process it traces). Killing
 * proot alone would leave the traced processes running, so each group is marked in the store's
 * tmp as `proot-<hoist pid>-<group id>` while it runs; if hoist dies, the watchdog (and the next
 * start) kills the groups a dead hoist left (see reclaim.ts), and the marks go with its temp files.
 */
export function prootMark(tmpDir: string, pgid: number): string {
  return path.join(tmpDir, `proot-${process.pid}-${pgid}`);
}

export async function markProotGroup(tmpDir: string, pgid: number): Promise<() => Promise<void>> {
  const file = prootMark(tmpDir, pgid);
  await fsp.mkdir(tmpDir, { recursive: true });
  await fsp.writeFile(file, '');
  return () => fsp.rm(file, { force: true });
}

/** Is `pgid` still the group a proot (or fakeroot's daemon for a RUN under proot) leads (not a reused id)? */
function leadsProot(pgid: number): boolean {
  try {
    const argv0 = readFileSync(`/proc/${pgid}/cmdline`, 'utf8').split('\0')[0] ?? '';
    return ['proot', 'faked-sysv', 'faked'].includes(path.basename(argv0));
  } catch {
    return false;
  }
}

/** SIGKILL the proot groups the dead hoist `pid` marked in `tmpDir`; how many were still there. */
export async function killProotGroups(tmpDir: string, pid: number): Promise<number> {
  const names = await fsp.readdir(tmpDir).catch(() => [] as string[]);
  let killed = 0;
  for (const n of names) {
    const m = /^proot-(\d+)-(\d+)$/.exec(n);
    if (!m || Number(m[1]) !== pid) continue;
    const pgid = Number(m[2]);
    if (!leadsProot(pgid)) continue;
    try {
      process.kill(-pgid, 'SIGKILL');
      killed++;
    } catch {
      // already gone
    }
  }
  return killed;
}
