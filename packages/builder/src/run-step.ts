import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Descriptor, Digest } from '@hoist/oci';
import type { RunInstruction, Stage, Step } from '@hoist/parser';
import { DEFAULT_PATH, DEFAULT_SHELL, envGet } from './config-ops.js';
import { BuildError } from './errors.js';
import { makeTempDir } from './tmp.js';
import type { BuildContext, StageState } from './context.js';
import { withMountedImage } from './materialize.js';
import { resolveUser, secureJoin } from './rootfs.js';
import { runInSandbox } from './sandbox/runtime.js';
import { openNetwork, runNetwork, type RunNetwork } from './sandbox/network.js';
import { prepareRunMounts } from './run-mounts.js';
import { collectSources, digestSources } from './sources.js';
import { keyStage } from './stage.js';

/** Proxy args are result-neutral: they never enter a cache key (as in BuildKit). */
const PROXY_ARGS = new Set(['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy']);

/** The environment a RUN sees: the image's Env (with a default PATH) plus the build args in scope. */
export function runEnv(state: StageState, step: Step): string[] {
  const { env, args } = runEnvParts(state, step);
  return [...env, ...args];
}

/** The image's Env (with a default PATH), and the build args in scope that no ENV overrides. */
function runEnvParts(state: StageState, step: Step): { env: string[]; args: string[] } {
  const env = [...(state.img.config.config?.Env ?? [])];
  if (envGet(env, 'PATH') === undefined) env.unshift(`PATH=${DEFAULT_PATH}`);
  // an ENV of the same name, before or after the ARG (or from the base image), wins: the
  // Dockerfile reference says ENV always overrides ARG, and buildah agrees (conformance arg-scoping)
  const args: string[] = [];
  for (const [k, v] of step.buildArgs) if (envGet(env, k) === undefined && envGet(args, k) === undefined) args.push(`${k}=${v}`);
  return { env, args };
}

/** The command line of a RUN, heredocs included (a lone heredoc with a shebang runs as a script file). */
export function runArgs(ins: RunInstruction, shell: readonly string[] | undefined): { args: string[]; script?: string } {
  const sh = [...(shell ?? DEFAULT_SHELL)];
  if (ins.command.form === 'exec') return { args: ins.command.args };
  const cmd = ins.command.command;
  if (ins.heredocs.length === 1) {
    const h = ins.heredocs[0]!;
    const only = new RegExp(`^\\s*<<-?\\s*(["']?)${h.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\1\\s*$`);
    if (only.test(cmd)) {
      if (h.content.startsWith('#!')) return { args: [`/dev/pipes/${h.name}`], script: h.content };
      return { args: [...sh, h.content] };
    }
  }
  if (ins.heredocs.length > 0) {
    // as BuildKit reconstitutes it: the command line, then each body followed by its terminator
    return { args: [...sh, cmd + ins.heredocs.map((h) => `\n${h.content}${h.name}`).join('')] };
  }
  return { args: [...sh, cmd] };
}

export async function runCacheInputs(ctx: BuildContext, step: Step, ins: RunInstruction, state: StageState): Promise<Record<string, unknown>> {
  const c = state.img.config.config ?? {};
  // a bind/cache mount from another stage makes the step depend on that stage's content
  const fromStages: string[] = [];
  for (const i of step.stageInputs) fromStages.push((await keyStage(ctx, i)).key);
  return {
    fromStages,
    ...(await mountSourceInputs(ctx, ins)),
    op: 'run',
    args: runArgs(ins, c.Shell),
    ...envInputs(state, step),
    user: c.User ?? '',
    cwd: c.WorkingDir || '/',
    // `sandbox` for the default network whatever provides it (slirp4netns today): a stable key
    network: runNetwork(ins.network, ctx.opts.network),
    security: ins.security,
    mounts: ins.mounts.map((m) => (m.type === 'secret' || m.type === 'ssh' ? { type: m.type, id: m.id, target: m.target, env: 'env' in m ? m.env : undefined } : m)),
    platform: ctx.platform,
  };
}

/** The environment as two inputs: the image's `env`, and the `buildArgs` in scope (proxy args excluded). */
function envInputs(state: StageState, step: Step): { env: string[]; buildArgs: string[] } {
  const { env, args } = runEnvParts(state, step);
  const keep = (e: string): boolean => !PROXY_ARGS.has(e.slice(0, e.indexOf('=')));
  return { env: env.filter(keep), buildArgs: args.filter(keep) };
}

/**
 * What bind mounts read besides other stages: the content digest of context paths (through
 * .dockerignore; never mtimes) and the manifest digest of images.
 */
async function mountSourceInputs(ctx: BuildContext, ins: RunInstruction): Promise<Record<string, unknown>> {
  const context: string[] = [];
  const images: string[] = [];
  for (const m of ins.mounts) {
    if (m.type !== 'bind') continue;
    if (m.from === undefined) {
      const items = await collectSources(ctx.opts.contextDir, [m.source ?? '.'], { ...(ctx.contextFilter ? { filter: ctx.contextFilter } : {}), allowEmptyWildcard: false });
      context.push(await digestSources(items, ctx.fileDigests));
    } else if (!ctx.plan.stages.some((s) => s.name?.toLowerCase() === m.from!.toLowerCase() || String(s.index) === m.from)) {
      const img = await ctx.opts.images.resolve(m.from, { platform: ctx.platform, ...(ctx.opts.signal ? { signal: ctx.opts.signal } : {}) });
      images.push(img.descriptor.digest);
    }
  }
  return { ...(context.length > 0 ? { contextMounts: context } : {}), ...(images.length > 0 ? { imageMounts: images } : {}) };
}

const TAIL_LINES = 20;

export async function executeRun(
  ctx: BuildContext,
  stage: Stage,
  step: Step,
  ins: RunInstruction,
  state: StageState,
): Promise<{ descriptor: Descriptor; diffId: Digest }> {
  const rt = ctx.runtime();
  const etc = await ctx.etc();
  const c = state.img.config.config ?? {};
  const { args, script } = runArgs(ins, c.Shell);
  return ctx.limit(() =>
    withMountedImage(ctx, state.img, async (m) => {
      const user = await resolveUser(m.root, c.User ?? '').catch((e: unknown) => {
        throw e instanceof BuildError ? e : new BuildError('USER_NOT_FOUND', String(e));
      });
      const cwd = c.WorkingDir || '/';
      const cwdAbs = await secureJoin(m.root, cwd);
      await fsp.mkdir(cwdAbs, { recursive: true });
      const mounts = await prepareRunMounts(ctx, stage, ins, m.root, user);
      const network = runNetwork(ins.network, ctx.opts.network);
      let net: RunNetwork | undefined;
      try {
        net = await openNetwork(network, ctx.opts.signal ? { signal: ctx.opts.signal } : {});
        const env = [...runEnv(state, step), ...mounts.env];
        if (script !== undefined) {
          const dir = await makeTempDir(ctx.tmpDir, 'heredoc-');
          await fsp.writeFile(path.join(dir, path.posix.basename(args[0]!)), script, { mode: 0o755 });
          mounts.mounts.push({ destination: '/dev/pipes', type: 'bind', source: dir, options: ['rbind', 'ro'] });
          mounts.cleanup.push(() => fsp.rm(dir, { recursive: true, force: true }));
        }
        const tail: string[] = [];
        let partial = '';
        const onData = (stream: 'stdout' | 'stderr') => (d: Buffer): void => {
          const text = d.toString();
          ctx.emit({ type: 'log', id: step.id, stream, data: text });
          const lines = (partial + text).split('\n');
          partial = lines.pop() ?? '';
          tail.push(...lines);
          if (tail.length > TAIL_LINES) tail.splice(0, tail.length - TAIL_LINES);
        };
        const res = await runInSandbox(
          rt,
          {
            rootfs: m.root,
            hostname: 'buildkitsandbox',
            network: net.spec,
            hostsFile: etc.hosts,
            resolvConf: network === 'sandbox' ? etc.sandboxResolv : etc.resolv,
            mounts: mounts.mounts,
            privileged: ins.security === 'insecure',
            ...(ctx.opts.seccomp ? { seccomp: ctx.opts.seccomp } : {}),
            ...(ctx.opts.resources ? { resources: ctx.opts.resources } : {}),
            process: { args, env, cwd, uid: user.uid, gid: user.gid, additionalGids: user.additionalGids },
          },
          {
            stateDir: path.join(ctx.opts.root, 'runtime', rt.name),
            bundleParent: await ctx.sandbox.bundles(),
            stdout: onData('stdout'),
            stderr: onData('stderr'),
            ...(ctx.opts.signal ? { signal: ctx.opts.signal } : {}),
          },
        );
        if (partial) tail.push(partial);
        if (res.exitCode !== 0) {
          const shown = ins.command.form === 'exec' ? JSON.stringify(ins.command.args) : ins.command.command;
          throw new BuildError(
            'STEP_FAILED',
            `process "${shown}" did not complete successfully: exit code: ${res.exitCode}${res.signal ? ` (signal ${res.signal})` : ''} (runtime ${rt.name})`,
            { outputTail: tail.slice(-TAIL_LINES), exitCode: res.exitCode },
          );
        }
      } finally {
        await net?.close();
        await mounts.release();
      }
      const r = await m.commit(commitOptions(ctx));
      return { descriptor: r.descriptor, diffId: r.diffId };
    }),
  );
}

export function commitOptions(ctx: BuildContext): { compression: 'gzip'; sourceDateEpoch?: number; mediaType?: string } {
  const o: { compression: 'gzip'; sourceDateEpoch?: number; mediaType?: string } = { compression: 'gzip' };
  if (ctx.opts.sourceDateEpoch !== undefined) o.sourceDateEpoch = ctx.opts.sourceDateEpoch;
  if (ctx.opts.format === 'docker') o.mediaType = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
  return o;
}
