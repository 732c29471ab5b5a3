import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Socket } from 'node:net';
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
 * Waits until the shell's stdin (a pipe from its owner) says "bye" or ends. An end without
 * "bye" means the owner died (SIGKILL, OOM killer, crash): the shell SIGKILLs at once every
 * process in the owner's container cgroups (a container's init takes its PID namespace with
 * it), then runs the reclaim script. It ignores the terminal's signals: Ctrl-C must not take
 * it down with its owner. Arguments: $0 node, $1 script, $2 store root, $3 owner pid.
 */
const SHELL = [
  'trap "" INT TERM HUP QUIT',
  'read -r line',
  '[ "$line" = bye ] && exit 0',
  'for f in /sys/fs/cgroup/hoist/hoist-"$3"-*/cgroup.procs /sys/fs/cgroup/*/hoist/hoist-"$3"-*/cgroup.procs; do',
  '  [ -f "$f" ] && kill -9 $(cat "$f") 2>/dev/null',
  'done',
  'exec "$0" "$1" "$2" "$3"',
].join('\n');

/**
 * Tie the sandboxes of this process to its life. A small detached shell (in its own session)
 * holds a pipe from this process; when this process dies without closing the watchdog, the
 * pipe ends and the shell runs `reclaim-main.js`, which kills and deletes this process's
 * containers (killing the runtime alone would leave the container running) and removes its
 * cgroups, bundles, secrets and mounts at once, not only at the next hoist start.
 */
export function startWatchdog(root: string): Watchdog {
  const child = spawn('/bin/sh', ['-c', SHELL, process.execPath, reclaimScript(), root, String(process.pid)], {
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
