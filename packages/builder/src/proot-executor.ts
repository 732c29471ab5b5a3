import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { BuildError } from './errors.js';
import type { ExecOptions, Executor } from './executor.js';
import { prootArgs, prootEnv } from './sandbox/proot.js';
import { findFakeroot, guestRefusesLib, type FakerootTools } from './sandbox/fakeroot-guest.js';
import { prepareFakeroot, withoutPreloadNotice, type FakerootRun } from './sandbox/fakeroot.js';
import { chownCreated, inodeOwners, userCreator, walkOwners } from './sandbox/fakeroot-owners.js';
import { Ownership } from '@hoist/snapshotter';
import { unprivilegedIds } from '@hoist/oci';
import { withPathSyscallFilter } from './sandbox/proot-seccomp.js';
import { findRuntime, type RunResult } from './sandbox/runtime.js';
import { markProotGroup } from './sandbox/proot-groups.js';
import type { SandboxOptions } from './sandbox/spec.js';
import { makeTempDir } from './tmp.js';

/**
 * The no-privilege sandbox (issue 10, mode 2): RUN under proot, which needs no namespace, no
 * mount and no capability — it traces the process (ptrace) and translates every path into the
 * rootfs, so RUN sees and writes nothing of the host outside its root but the bound /proc,
 * /dev and /sys. Ids are faked (proot -0 for root): files land owned by the builder's user.
 * Who owns them in the image is kept in the mount's ownership record (ExecOptions.owners): a RUN
 * as root runs with fakeroot's preload library, whose daemon is loaded from the record and read
 * back into it afterwards (see prepareFakeroot). It shares the network of the pod, sets no limits.
 */
export class ProotExecutor implements Executor {
  private bin: string | undefined;
  private fakeroot: FakerootTools | undefined | null = null;
  private readonly warned = new Set<string>();

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
    let fr: FakerootRun | undefined;
    let ok = false;
    try {
      const args = prootArgs(sb, (dest) => dirs.find((d) => d.dest === dest)!.dir);
      fr = sb.process.uid === 0 ? await this.withFakeroot(sb, opts, tmp) : await userRun(sb, opts);
      const env = { ...prootEnv(sb), ...fr?.env };
      const full = fr ? [...args.slice(0, 2), ...fr.binds.flatMap((b) => ['-b', b]), ...args.slice(2)] : args;
      const cmd = this.filtered(bin, full, opts);
      const res = await spawnProot(cmd, env, { ...opts, tmpDir: this.o.tmpDir, rootfs: sb.rootfs, ...(fr?.guestLib ? { guestLib: fr.guestLib } : {}) });
      ok = res.exitCode === 0 && !res.signal;
      return res;
    } finally {
      await fr?.finish(ok);
      await Promise.all(tmp.map((d) => fsp.rm(d, { recursive: true, force: true })));
    }
  }

  /**
   * fakeroot for a RUN as root with an ownership record, when the host has it and the image can
   * load it; otherwise undefined, with a warning (once per reason) of what is not recorded.
   */
  private async withFakeroot(sb: SandboxOptions, opts: ExecOptions, tmp: string[]): Promise<FakerootRun | undefined> {
    if (!opts.owners) return undefined;
    if (this.fakeroot === null) this.fakeroot = findFakeroot();
    const tools = this.fakeroot;
    if (!tools) return this.warn(opts, 'fakeroot is not installed: the owners RUN gives files (chown, useradd) are not recorded, and the layers say 0:0. Fix: apt-get install fakeroot');
    const refused = await guestRefusesLib(sb.rootfs, tools.lib);
    if (refused) return this.warn(opts, `this image cannot load fakeroot's library (${refused}): the owners RUN gives files (chown, useradd) are not recorded under proot, and the layers say 0:0`);
    const dir = await makeTempDir(this.o.tmpDir, 'fakeroot-');
    tmp.push(dir);
    try {
      return await prepareFakeroot({ tools, rootfs: sb.rootfs, owners: opts.owners, dir, tmpDir: this.o.tmpDir, env: prootEnv(sb) });
    } catch (e) {
      // e.g. SysV message queues refused here: the RUN still runs, its chowns unrecorded
      return this.warn(opts, `fakeroot could not start (${(e as Error).message}): the owners RUN gives files (chown, useradd) are not recorded under proot, and the layers say 0:0`);
    }
  }

  /** proot under the seccomp filter for the path calls it does not translate (see proot-seccomp.ts). */
  private filtered(bin: string, args: string[], opts: ExecOptions): { bin: string; args: string[] } {
    const cmd = withPathSyscallFilter(bin, args);
    if (!('refused' in cmd)) return cmd;
    this.warn(opts, `RUN under proot can reach this host's files through system calls proot does not translate (statx, openat2, faccessat2, fchmodat2, execveat), and the filter that refuses them cannot be installed: ${cmd.refused}`);
    return { bin, args };
  }

  private warn(opts: ExecOptions, message: string): undefined {
    if (this.warned.has(message)) return undefined;
    this.warned.add(message);
    opts.warn?.(message);
    return undefined;
  }
}

/**
 * A RUN as a non-root USER: what it creates becomes its own — in the ownership record (see
 * userCreator), or on disk when hoist is root (see chownCreated).
 */
async function userRun(sb: SandboxOptions, opts: ExecOptions): Promise<FakerootRun | undefined> {
  const owners = opts.owners;
  if (!owners) {
    if (unprivilegedIds()) return undefined;
    const before = new Set((await inodeOwners(sb.rootfs, new Ownership())).keys());
    return { env: {}, binds: [], finish: async (ok) => (ok ? chownCreated(sb.rootfs, before, sb.process) : undefined) };
  }
  const before = await inodeOwners(sb.rootfs, owners);
  return {
    env: {},
    binds: [],
    finish: async (ok) => {
      if (ok) owners.assign(await walkOwners(sb.rootfs, before, userCreator(sb.process)));
    },
  };
}

/** Run proot in a process group of its own, so a cancel kills it and every process it traces. */
async function spawnProot(cmd: { bin: string; args: string[] }, env: NodeJS.ProcessEnv, opts: ExecOptions & { tmpDir: string; rootfs: string; guestLib?: string }): Promise<RunResult> {
  const { bin, args } = cmd;
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env, cwd: path.parse(opts.rootfs).root, detached: true });
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

function waitProot(child: ChildProcessByStdio<null, Readable, Readable>, bin: string, opts: ExecOptions & { guestLib?: string }): Promise<RunResult> {
  return new Promise<RunResult>((resolve, reject) => {
    const stderr = opts.guestLib ? withoutPreloadNotice(opts.guestLib, opts.stderr) : { write: (d: Buffer) => opts.stderr?.(d), end: () => undefined };
    child.stdout.on('data', (d: Buffer) => opts.stdout?.(d));
    child.stderr.on('data', (d: Buffer) => stderr.write(d));
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
      stderr.end();
      opts.signal?.removeEventListener('abort', kill);
      if (opts.signal?.aborted) return reject(new BuildError('CANCELLED', 'build cancelled'));
      resolve(sig ? { exitCode: code ?? 128, signal: sig } : { exitCode: code ?? 128 });
    });
  });
}
