/**
 * Output that goes away (`hoist images | head -1`) ends hoist quietly, the way SIGPIPE ends other
 * tools: no stack trace, nothing more written, the running command cancelled through its abort
 * signal (so sandboxes and mounts are cleaned up as on Ctrl-C), exit status 141 (128 + SIGPIPE).
 */

/** Exit status after a broken pipe, as a shell reports a process killed by SIGPIPE. */
export const EXIT_BROKEN_PIPE = 141;
/** Exit status after another write error on stdout/stderr (sysexits' EX_IOERR). */
export const EXIT_IO_ERROR = 74;

export interface PipeGuard {
  /** Set once stdout or stderr failed: the exit status hoist must end with. */
  readonly exitCode: number | undefined;
}

/** Watches `streams` (stdout and stderr) for write errors; calls `onClosed` on the first one. */
export function guardPipes(onClosed: () => void, streams: NodeJS.EventEmitter[] = [process.stdout, process.stderr]): PipeGuard {
  const guard = { exitCode: undefined as number | undefined };
  for (const s of streams) {
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (guard.exitCode !== undefined) return;
      guard.exitCode = e.code === 'EPIPE' ? EXIT_BROKEN_PIPE : EXIT_IO_ERROR;
      process.exitCode = guard.exitCode;
      onClosed();
    });
  }
  return guard;
}
