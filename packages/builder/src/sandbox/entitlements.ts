import type { Plan, Stage, Step } from '@hoist/parser';
import { BuildError } from '../errors.js';
import type { DefaultNetwork } from './network.js';

/**
 * What a Dockerfile may only do when the caller allows it (`hoist build --allow …`), as
 * BuildKit's entitlements: a RUN with the host's network, a RUN without the sandbox.
 */
export type Entitlement = 'network.host' | 'security.insecure';

export const ENTITLEMENTS: readonly Entitlement[] = ['network.host', 'security.insecure'];

/** `--allow` values; unknown names are a usage mistake. */
export function parseEntitlements(values: readonly string[]): Entitlement[] {
  const out: Entitlement[] = [];
  for (const v of values.flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean)) {
    if (!(ENTITLEMENTS as readonly string[]).includes(v)) {
      throw new BuildError('INVALID_SECURITY_OPT', `--allow ${v}: unknown entitlement; use ${ENTITLEMENTS.map((e) => `--allow ${e}`).join(' or ')}`);
    }
    if (!out.includes(v as Entitlement)) out.push(v as Entitlement);
  }
  return out;
}

export interface EntitlementContext {
  plan: Plan;
  /** The stages the build will solve (the target and what it depends on). */
  stages: readonly number[];
  allow: readonly Entitlement[];
  /** The build's default network: `--network host` is the caller's own choice of the host network. */
  network: DefaultNetwork | undefined;
  label(stage: number, step: Step): string;
}

/** What a RUN step needs that was not allowed, if anything. */
function missing(step: Step, c: EntitlementContext): Entitlement | undefined {
  const ins = step.instruction;
  if (ins.kind !== 'run') return undefined;
  if (ins.security === 'insecure' && !c.allow.includes('security.insecure')) return 'security.insecure';
  // `--network host` for the whole build is the caller's own choice: it allows RUN --network=host
  if (ins.network === 'host' && c.network !== 'host' && !c.allow.includes('network.host')) return 'network.host';
  return undefined;
}

function refusal(stage: Stage, step: Step, need: Entitlement, c: EntitlementContext): BuildError {
  const flag = need === 'security.insecure' ? 'RUN --security=insecure' : 'RUN --network=host';
  return new BuildError('ENTITLEMENT_REQUIRED', `${flag} needs the ${need} entitlement, which this build does not grant; if you trust this Dockerfile, build with --allow ${need}`, {
    location: { stage: stage.name ?? String(stage.index), step: c.label(stage.index, step), file: step.range.file, line: step.line, instruction: step.original.trim() },
  });
}

/** Refuse the build, before anything runs, when a RUN it needs asks for more than the caller allowed. */
export function checkEntitlements(c: EntitlementContext): void {
  for (const i of c.stages) {
    const stage = c.plan.stages[i]!;
    for (const step of stage.steps) {
      const need = missing(step, c);
      if (need) throw refusal(stage, step, need, c);
    }
  }
}
