import { HelperUnavailable, MNT_DETACH, MS_NODEV, MS_NOEXEC, MS_NOSUID, runTool, syscalls } from '@hoist/snapshotter';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';

/** Upper bound of the private tmpfs (pages are only used as files fill it). */
const TMPFS_SIZE = '64m';

export interface PrivateDir {
  path: string;
  /** True when it is a tmpfs (else a 0700 directory on the store's disk). */
  tmpfs: boolean;
  release(): Promise<void>;
}

/** A tool's exit status (-1 when it could not start); through the tool shells, without blocking. */
async function status(cmd: string, args: string[]): Promise<number> {
  return (await runTool(cmd, args, { allowFail: true }).catch(() => undefined))?.status ?? -1;
}

/** `call` through the syscall helper: true when it succeeded, false when it failed, undefined where the helper cannot run. */
async function viaHelper(call: () => Promise<void>): Promise<boolean | undefined> {
  try {
    await call();
    return true;
  } catch (e) {
    return e instanceof HelperUnavailable ? undefined : false;
  }
}

async function mountTmpfs(dir: string): Promise<boolean> {
  const data = `mode=0700,size=${TMPFS_SIZE}`;
  const flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  const done = await viaHelper(() => syscalls.mount({ source: 'tmpfs', fstype: 'tmpfs', flags, data, target: dir }));
  return done ?? (await status('mount', ['-t', 'tmpfs', '-o', `${data},nosuid,nodev,noexec`, 'tmpfs', dir])) === 0;
}

async function unmountTmpfs(dir: string): Promise<void> {
  if (await viaHelper(() => syscalls.umount(dir))) return;
  if (await viaHelper(() => syscalls.umount(dir, MNT_DETACH))) return;
  if ((await status('umount', [dir])) !== 0) await status('umount', ['-l', dir]);
}

/**
 * A directory only root can enter (0700), on a tmpfs of its own when this process may mount
 * one: what runs a sandbox keeps its bundles (config.json holds the environment, secrets
 * included) and secret files there, in memory, never on disk. Named `sandbox-<pid>-<hex>`
 * below `tmpRoot` so that the next hoist start unmounts and removes it if this process is
 * killed (see reclaim.ts).
 */
export async function createPrivateDir(tmpRoot: string): Promise<PrivateDir> {
  // the directory calls are synchronous (issue 16): metadata only, each a thread-pool turn awaited
  mkdirSync(tmpRoot, { recursive: true });
  const dir = path.join(tmpRoot, `sandbox-${process.pid}-${randomBytes(6).toString('hex')}`);
  mkdirSync(dir, { mode: 0o700 });
  const tmpfs = await mountTmpfs(dir);
  if (!tmpfs) chmodSync(dir, 0o700);
  return {
    path: dir,
    tmpfs,
    release: async () => {
      if (tmpfs) await unmountTmpfs(dir);
      // empty once unmounted (the bundles and secrets were in the tmpfs)
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
