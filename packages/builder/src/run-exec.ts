import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Descriptor, Digest } from '@hoist/oci';
import type { RunInstruction, Step } from '@hoist/parser';
import type { Mounted } from '@hoist/snapshotter';
import { BuildError } from './errors.js';
import { makeTempDir } from './tmp.js';
import type { BuildSession } from './session.js';
import type { StageInputs, StageState } from './state.js';
import { withMountedImage } from './materialize.js';
import { resolveUser, secureJoin, type ResolvedUser } from './rootfs.js';
import { runNetwork, type RunNetwork } from './sandbox/network.js';
import { takePrep } from './run-prep.js';
import { prepareRunMounts, type PreparedMounts } from './run-mounts.js';
import { commitOptions } from './commit-options.js';
import { singleIdHint } from './sandbox/isolation.js';
import { runArgs, runEnv } from './run-step.js';
import { emulationFor } from './sandbox/emulation.js';
import { configPlatform } from './platforms.js';
import { withPending, type Pending } from './pending.js';

const TAIL_LINES = 20;

/** A RUN to execute on a mounted root. */
interface RunJob {
  step: Step;
  ins: RunInstruction;
  state: StageState;
  stages: StageInputs;
}

/** Execute a RUN on its stage's state and commit what it changed as a layer. */
export async function executeRun(ctx: BuildSession, job: RunJob): Promise<{ descriptor: Descriptor; diffId: Digest }> {
  if (!ctx.executor.prepare) ctx.executor.name(); // find the runtime before anything is mounted
  return ctx.limit(() =>
    // what ends after the process (its bundle's removal, its network) runs on while the layer is committed
    withPending(async (pending) => {
      const prep = takePrep(ctx, job.step, job.ins);
      try {
        return await withMountedImage(ctx, job.state.img, async (m) => {
          const user = await prepareRoot(m.root, job.state.img.config.config ?? {});
          const mounts = await prepareRunMounts(ctx, { ins: job.ins, root: m.root, user, stages: job.stages, platform: configPlatform(job.state.img.config) });
          try {
            await runProcess(ctx, { job, m, user, mounts, net: await prep.ready(), pending });
          } finally {
            pending.add(prep.close());
            await mounts.release();
          }
          const r = await m.commit(commitOptions(ctx));
          return { descriptor: r.descriptor, diffId: r.diffId };
        });
      } finally {
        pending.add(prep.close());
      }
    }),
  );
}

/**
 * The RUN's user, resolved from the root's /etc/passwd and /etc/group, and its working directory,
 * made: side by side (the user's files are only read). A user error is reported first.
 */
export async function prepareRoot(root: string, c: { User?: string; WorkingDir?: string }): Promise<ResolvedUser> {
  const user = resolveUser(root, c.User ?? '').catch((e: unknown) => {
    throw e instanceof BuildError ? e : new BuildError('USER_NOT_FOUND', String(e));
  });
  const workdir = secureJoin(root, c.WorkingDir || '/').then((p) => fsp.mkdir(p, { recursive: true }));
  const [u, w] = await Promise.allSettled([user, workdir]);
  if (u.status === 'rejected') throw u.reason;
  if (w.status === 'rejected') throw w.reason;
  return u.value;
}

/** The step's output, streamed as log events, with its last lines kept for an error. */
function outputTail(ctx: BuildSession, id: string): { onData(stream: 'stdout' | 'stderr'): (d: Buffer) => void; lines(): string[] } {
  const tail: string[] = [];
  let partial = '';
  return {
    onData: (stream) => (d) => {
      const text = d.toString();
      ctx.emit({ type: 'log', id, stream, data: text });
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      tail.push(...lines);
      if (tail.length > TAIL_LINES) tail.splice(0, tail.length - TAIL_LINES);
    },
    lines: () => [...tail, ...(partial ? [partial] : [])].slice(-TAIL_LINES),
  };
}

/** Run the RUN's process in the sandbox (through the executor); a non-zero exit is a STEP_FAILED. */
async function runProcess(ctx: BuildSession, r: { job: RunJob; m: Mounted; user: ResolvedUser; mounts: PreparedMounts; net: RunNetwork; pending: Pending }): Promise<void> {
  const { ins, state, step } = r.job;
  const c = state.img.config.config ?? {};
  const { args, script } = runArgs(ins, c.Shell);
  const etc = await ctx.etc();
  const env = [...runEnv(state, step, ctx.plan.proxyArgs), ...r.mounts.env];
  if (script !== undefined) {
    const dir = await makeTempDir(ctx.tmpDir, 'heredoc-');
    await fsp.writeFile(path.join(dir, path.posix.basename(args[0]!)), script, { mode: 0o755 });
    r.mounts.mounts.push({ destination: '/dev/pipes', type: 'bind', source: dir, options: ['rbind', 'ro'] });
    r.mounts.cleanup.push(() => fsp.rm(dir, { recursive: true, force: true }));
  }
  const out = outputTail(ctx, step.id);
  // the stage's own platform (FROM --platform=$BUILDPLATFORM stages run natively)
  const emu = emulationFor({ os: state.img.config.os, architecture: state.img.config.architecture, ...(state.img.config.variant ? { variant: state.img.config.variant } : {}) }, ctx.opts.emulationHost);
  const sandboxed = runNetwork(ins.network, ctx.opts.network) === 'sandbox';
  const res = await ctx.executor.run(
    {
      rootfs: r.m.root,
      hostname: 'buildkitsandbox',
      network: r.net.spec,
      hostsFile: etc.hosts,
      resolvConf: sandboxed ? etc.sandboxResolv : etc.resolv,
      mounts: r.mounts.mounts,
      privileged: ins.security === 'insecure',
      ...(emu.kind === 'private-binfmt' ? { emulation: { emulator: emu.emulator, target: emu.target, register: emu.register, helper: emu.helper } } : {}),
      ...(ctx.opts.seccomp ? { seccomp: ctx.opts.seccomp } : {}),
      compiledSeccomp: ctx.seccompFilter(),
      ...(ctx.opts.resources ? { resources: ctx.opts.resources } : {}),
      ...(ctx.opts.runHost?.shmSizeBytes ? { shmSizeBytes: ctx.opts.runHost.shmSizeBytes } : {}),
      ...(ctx.opts.runHost?.ulimits?.length ? { rlimits: ctx.opts.runHost.ulimits } : {}),
      process: { args, env, cwd: c.WorkingDir || '/', uid: r.user.uid, gid: r.user.gid, additionalGids: r.user.additionalGids },
    },
    {
      bundleParent: await ctx.sandbox.bundles(),
      defer: r.pending.add,
      stdout: out.onData('stdout'),
      stderr: out.onData('stderr'),
      ...(r.m.owners ? { owners: r.m.owners } : {}),
      warn: (message) => ctx.emit({ type: 'warning', message }),
      ...(ctx.opts.signal ? { signal: ctx.opts.signal } : {}),
    },
  );
  if (res.exitCode === 0) return;
  const shown = ins.command.form === 'exec' ? JSON.stringify(ins.command.args) : ins.command.command;
  const how = `exit code: ${res.exitCode}${res.signal ? ` (signal ${res.signal})` : ''} (runtime ${ctx.executor.name()})${singleIdHint()}`;
  throw new BuildError('STEP_FAILED', `process "${shown}" did not complete successfully: ${how}`, { outputTail: out.lines(), exitCode: res.exitCode });
}
