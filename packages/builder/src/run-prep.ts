import type { RunInstruction, Step } from '@hoist/parser';
import type { BuildSession } from './session.js';
import { openNetwork, runNetwork, type RunNetwork } from './sandbox/network.js';

/** What a RUN's sandbox needs besides its root, started at once (see prepareSandbox). */
export interface SandboxPrep {
  /** The network, once the runtime is found and the sandbox session (watchdog, private dir) is up. */
  ready(): Promise<RunNetwork>;
  /** Close the network (idempotent; also when it failed or was never awaited). */
  close(): Promise<void>;
}

/**
 * Start, side by side, what a RUN waits for before its process: its network namespace (a fresh
 * one for each RUN, used by that RUN only), the runtime's `--version` check, the build's sandbox
 * session and /etc files. Each is a process start or a few; one after another they added up.
 */
export function prepareSandbox(ctx: BuildSession, ins: RunInstruction): SandboxPrep {
  const net = openNetwork(runNetwork(ins.network, ctx.opts.network), ctx.opts.signal ? { signal: ctx.opts.signal } : {});
  const rest = Promise.all([ctx.executor.prepare?.(), ctx.sandbox.bundles(), ctx.etc()]);
  net.catch(() => undefined);
  rest.catch(() => undefined);
  let closed: Promise<void> | undefined;
  return {
    ready: async () => {
      await rest;
      return net;
    },
    close: () => (closed ??= net.then((n) => n.close(), () => undefined)),
  };
}

/** Preparations started ahead of their RUN, by step id, per build. */
const ahead = new WeakMap<BuildSession, Map<string, SandboxPrep>>();

/**
 * Prepare the sandbox of a RUN that will execute while the steps before it run (its stage's
 * COPYs, the RUN before it). Once per step; one that is never taken (the step turned out
 * cached, the build failed first) is closed with the build session.
 */
export function prepareAhead(ctx: BuildSession, step: Step): void {
  if (step.instruction.kind !== 'run') return;
  let m = ahead.get(ctx);
  if (!m) {
    const preps = new Map<string, SandboxPrep>();
    ahead.set(ctx, preps);
    ctx.onCleanup(async () => {
      await Promise.all([...preps.values()].map((p) => p.close()));
      preps.clear();
    });
    m = preps;
  }
  if (!m.has(step.id)) m.set(step.id, prepareSandbox(ctx, step.instruction));
}

/** The preparation of `step` made ahead (removed from the table: its RUN owns it), else a new one. */
export function takePrep(ctx: BuildSession, step: Step, ins: RunInstruction): SandboxPrep {
  const m = ahead.get(ctx);
  const p = m?.get(step.id);
  if (p) {
    m!.delete(step.id);
    return p;
  }
  return prepareSandbox(ctx, ins);
}

/** Whether a preparation for `step` was made ahead and not yet taken (for tests). */
export function preparedAhead(ctx: BuildSession, step: Step): boolean {
  return ahead.get(ctx)?.has(step.id) ?? false;
}
