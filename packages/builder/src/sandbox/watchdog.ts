import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Socket } from 'node:net';
import { syscalls, type SyscallHelper } from '@hoist/snapshotter';
import { fileURLToPath } from 'node:url';

export interface Watchdog {
  /** This process is done with its sandboxes: the watchdog exits without reclaiming anything. */
  close(): void;
}

/** The script the watchdog runs when its owner dies (compiled next to this module). */
function reclaimScript(): string {
  const here = fileURLToPath(new URL('./reclaim-main.js', import.meta.url));
  // under ts-jest this module runs from src/: the compiled script is in dist/
  return existsSync(here) ? here : here.replace(/\/src\/sandbox\/reclaim-main\.js$/, '/dist/sandbox/reclaim-main.js');
}

/**
 * What the watchdog does once its owner has died (SIGKILL, OOM killer, crash): SIGKILL at once
 * every process in the owner's container cgroups (a container's init takes its PID namespace
 * with it), then run the reclaim script. Arguments: $0 node, $1 script, $2 store root, $3 owner
 * pid.
 */
const ORPHANED = [
  'for f in /sys/fs/cgroup/hoist/hoist-"$3"-*/cgroup.procs /sys/fs/cgroup/*/hoist/hoist-"$3"-*/cgroup.procs; do',
  '  [ -f "$f" ] && kill -9 $(cat "$f") 2>/dev/null',
  'done',
  'exec "$0" "$1" "$2" "$3"',
].join('\n');

/**
 * Where there is no syscall helper: a shell that waits until its stdin (a pipe from its owner)
 * says "bye" or ends, an end without "bye" meaning the owner died. It ignores the terminal's
 * signals: Ctrl-C must not take it down with its owner.
 */
const SHELL = ['trap "" INT TERM HUP QUIT', 'read -r line', '[ "$line" = bye ] && exit 0', ORPHANED].join('\n');

/**
 * Tie the sandboxes of this process to its life: when this process dies without closing the
 * watchdog, `reclaim-main.js` kills and deletes this process's containers (killing the runtime
 * alone would leave the container running) and removes its cgroups, bundles, secrets and
 * mounts at once, not only at the next hoist start. The watchdog is the syscall helper where it
 * runs (its stdin is a pipe from this process; it is armed with what to exec when that pipe
 * ends: no process start of its own), else a small detached shell (in its own session) holding
 * such a pipe.
 */
export function startWatchdog(root: string, helper: SyscallHelper = syscalls): Watchdog {
  const argv = ['/bin/sh', '-c', ORPHANED, process.execPath, reclaimScript(), root, String(process.pid)];
  if (!helper.usable) return shellWatchdog(argv);
  let closed = false;
  let fallback: Watchdog | undefined;
  const armed = helper.onOrphaned(argv).then(
    () => true,
    () => {
      if (!closed) fallback = shellWatchdog(argv);
      return false;
    },
  );
  return {
    close: () => {
      if (closed) return;
      closed = true;
      fallback?.close();
      void armed.then((ok) => (ok ? helper.disarm() : undefined)).catch(() => undefined);
    },
  };
}

function shellWatchdog(argv: string[]): Watchdog {
  const child = spawn('/bin/sh', ['-c', SHELL, ...argv.slice(3)], {
    detached: true,
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  const pipe = child.stdin as Socket;
  pipe.on('error', () => undefined);
  child.on('error', () => undefined);
  child.unref();
  pipe.unref();
  let closed = false;
  return {
    close: () => {
      if (closed) return;
      closed = true;
      pipe.end('bye\n');
    },
  };
}
