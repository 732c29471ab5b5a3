import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { BuildError } from './errors.js';
import type { ExecOptions, Executor } from './executor.js';
import { prootArgs, prootEnv } from './sandbox/proot.js';
import { findRuntime, type RunResult } from './sandbox/runtime.js';
import { markProotGroup } from './sandbox/proot-groups.js';
import type { SandboxOptions } from './sandbox/spec.js';
import { makeTempDir } from './tmp.js';

/**
 * The no-privilege sandbox (issue 10, mode 2): RUN under proot, which needs no namespace, no
 * mount and no capability — it traces the process (ptrace) and translates every path into the
 * rootfs, so RUN sees and writes nothing of the host outside its root but the bound /proc,
 * /dev and /sys. Ids are faked (proot -0 for root): files land owned by the builder's user and
 * layers record them as 0:0. It shares the network of the pod and sets no limits.
 */
export class ProotExecutor implements Executor {
  private bin: string | undefined;

  /** `reason`: why this mode runs, for the progress line (e.g. "user namespaces are refused: …"). */
  constructor(private readonly o: { tmpDir: string; reason: string; path?: string }) {}

  name(): string {
    this.bin ??= findRuntime(this.o.path ?? 'proot');
    if (!this.bin) {
      throw new BuildError('RUNTIME_UNAVAILABLE', 'proot is not installed, and this build runs RUN under proot (no privileges); install it with: apt-get install proot');
    }
    return 'proot';
  }

  describe(): string {
    return `proot (no privileges: ${this.o.reason}; RUN sees only its root through proot's path translation, with fake root ids and the pod's network)`;
  }

  async run(sb: SandboxOptions, opts: ExecOptions): Promise<RunResult> {
    const bin = (this.name(), this.bin!);
    const tmp: string[] = [];
    const dirs: Array<{ dest: string; dir: string }> = [];
    for (const m of sb.mounts ?? []) if (m.type === 'tmpfs') dirs.push({ dest: m.destination, dir: await makeTempDir(this.o.tmpDir, 'proot-tmpfs-') });
    tmp.push(...dirs.map((d) => d.dir));
    try {
      const args = prootArgs(sb, (dest) => dirs.find((d) => d.dest === dest)!.dir);
      return await spawnProot(bin, args, sb, { ...opts, tmpDir: this.o.tmpDir });
    } finally {
      await Promise.all(tmp.map((d) => fsp.rm(d, { recursive: true, force: true })));
    }
  }
}

/** Run proot in a process group of its own, so a cancel kills it and every process it traces. */
async function spawnProot(bin: string, args: string[], sb: SandboxOptions, opts: ExecOptions & { tmpDir: string }): Promise<RunResult> {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: prootEnv(sb), cwd: path.parse(sb.rootfs).root, detached: true });
  // if hoist dies, the watchdog kills the group (proot's traced processes outlive proot itself)
  const done = waitProot(child, bin, opts); // listeners first: a failed spawn reports 'error' at once
  done.catch(() => undefined); // handled below, after the mark is written
  const unmark = child.pid ? await markProotGroup(opts.tmpDir, child.pid).catch(() => async () => undefined) : async () => undefined;
  try {
    return await done;
  } finally {
    await unmark();
  }
}

function waitProot(child: ChildProcessByStdio<null, Readable, Readable>, bin: string, opts: ExecOptions): Promise<RunResult> {
  return new Promise<RunResult>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => opts.stdout?.(d));
    child.stderr.on('data', (d: Buffer) => opts.stderr?.(d));
    const kill = (): void => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    };
    opts.signal?.addEventListener('abort', kill, { once: true });
    child.on('error', (e) => reject(new BuildError('RUNTIME_FAILED', `could not start proot (${bin}): ${e.message}`, { cause: e })));
    child.on('close', (code, sig) => {
      opts.signal?.removeEventListener('abort', kill);
      if (opts.signal?.aborted) return reject(new BuildError('CANCELLED', 'build cancelled'));
      resolve(sig ? { exitCode: code ?? 128, signal: sig } : { exitCode: code ?? 128 });
    });
  });
}
