import type { Platform } from '@hoist/oci';
import { PROXY_ARGS as PROXY_ARG_NAMES, type RunInstruction, type Step } from '@hoist/parser';
import { DEFAULT_PATH, DEFAULT_SHELL, envGet } from './config-ops.js';
import type { BuildSession } from './session.js';
import { stageInput, type StageInputs, type StageState } from './state.js';
import { stageRef } from './stage-ref.js';
import { runNetwork } from './sandbox/network.js';
import { collectSources, digestSources } from './sources.js';
import { configPlatform } from './platforms.js';

/** Proxy args are result-neutral: they never enter a cache key (as in BuildKit). */
const PROXY_ARGS = new Set(PROXY_ARG_NAMES);

/**
 * The environment a RUN sees: the image's Env (with a default PATH), the build args in scope,
 * and the proxy build args given (`Plan.proxyArgs`: every RUN gets them without an ARG).
 */
export function runEnv(state: StageState, step: Step, proxyArgs: ReadonlyArray<[string, string]>): string[] {
  const { env, args } = runEnvParts(state, step);
  const proxies = proxyArgs.filter(([k]) => envGet(env, k) === undefined && envGet(args, k) === undefined).map(([k, v]) => `${k}=${v}`);
  return [...env, ...args, ...proxies];
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

export async function runCacheInputs(ctx: BuildSession, step: Step, ins: RunInstruction, state: StageState, stages: StageInputs): Promise<Record<string, unknown>> {
  const c = state.img.config.config ?? {};
  // a bind/cache mount from another stage makes the step depend on that stage's content
  const fromStages = step.stageInputs.map((i) => stageInput(stages, i).key);
  return {
    fromStages,
    ...(await mountSourceInputs(ctx, ins, configPlatform(state.img.config))),
    op: 'run',
    args: runArgs(ins, c.Shell),
    ...envInputs(state, step),
    user: c.User ?? '',
    cwd: c.WorkingDir || '/',
    // `sandbox` for the default network whatever provides it (slirp4netns today): a stable key
    network: runNetwork(ins.network, ctx.opts.network),
    security: ins.security,
    mounts: ins.mounts.map((m) => (m.type === 'secret' || m.type === 'ssh' ? { type: m.type, id: m.id, target: m.target, env: 'env' in m ? m.env : undefined } : m)),
    // the stage's platform (a FROM --platform=$BUILDPLATFORM stage has the same keys for every target)
    platform: configPlatform(state.img.config),
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
async function mountSourceInputs(ctx: BuildSession, ins: RunInstruction, platform: Platform): Promise<Record<string, unknown>> {
  const context: string[] = [];
  const images: string[] = [];
  for (const m of ins.mounts) {
    if (m.type !== 'bind') continue;
    if (m.from === undefined) {
      const items = await collectSources(ctx.opts.contextDir, [m.source ?? '.'], { ...(ctx.contextFilter ? { filter: ctx.contextFilter } : {}), allowEmptyWildcard: false });
      context.push(await digestSources(items, ctx.fileDigests));
    } else if (stageRef(ctx.plan, m.from).kind === 'image') {
      const img = await ctx.opts.images.resolve(m.from, { platform, ...(ctx.opts.signal ? { signal: ctx.opts.signal } : {}) });
      images.push(img.descriptor.digest);
    }
  }
  return { ...(context.length > 0 ? { contextMounts: context } : {}), ...(images.length > 0 ? { imageMounts: images } : {}) };
}
