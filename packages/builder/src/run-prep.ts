import type { RunInstruction, Step } from '@hoist/parser';
import { syscalls } from '@hoist/snapshotter';
import type { BuildSession, SandboxPrep } from './session.js';
import { openNetwork, runNetwork } from './sandbox/network.js';

/**
 * Start, side by side, what a RUN waits for before its process: its network namespace (a fresh
 * one for each RUN, used by that RUN only), the runtime's `--version` check, the build's sandbox
 * session and /etc files (each a process start or a few; one after another they added up), then
 * the build's seccomp filter (CPU work: done here, before the RUN's root is mounted, not after).
 */
export function prepareSandbox(ctx: BuildSession, ins: RunInstruction): SandboxPrep {
  const net = openNetwork(runNetwork(ins.network, ctx.opts.network), ctx.opts.signal ? { signal: ctx.opts.signal } : {});
  const rest = Promise.all([syscalls.x32Abi(), ctx.executor.prepare?.(), ctx.sandbox.bundles(), ctx.etc()]).then(([x32]) => compileSeccomp(ctx, x32));
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

/** Compile the build's seccomp filter; one that fails is compiled again, and reported, by the RUN itself. */
function compileSeccomp(ctx: BuildSession, x32: boolean): void {
  try {
    ctx.seccompFilter(x32);
  } catch {
    // see above
  }
}

/**
 * Prepare the sandbox of a RUN that will execute while the steps before it run (its stage's
 * COPYs, the RUN before it). Once per step; one that is never taken (the step turned out
 * cached, the build failed first) is closed with the build session.
 */
export function prepareAhead(ctx: BuildSession, step: Step): void {
  if (step.instruction.kind !== 'run' || ctx.preparedRuns.has(step.id)) return;
  ctx.preparedRuns.set(step.id, prepareSandbox(ctx, step.instruction));
}

/** The preparation of `step` made ahead (removed from the table: its RUN owns it), else a new one. */
export function takePrep(ctx: BuildSession, step: Step, ins: RunInstruction): SandboxPrep {
  const p = ctx.preparedRuns.get(step.id);
  if (!p) return prepareSandbox(ctx, ins);
  ctx.preparedRuns.delete(step.id);
  return p;
}

/** Whether a preparation for `step` was made ahead and not yet taken (for tests). */
export function preparedAhead(ctx: BuildSession, step: Step): boolean {
  return ctx.preparedRuns.has(step.id);
}
