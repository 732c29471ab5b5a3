/** `outline(df, options)`: what must be resolved (base images) before planning. */
import type { Dockerfile } from './ast.js';
import type { Outline, PlanOptions } from './plan-types.js';
import { DEFAULT_PLATFORM, platformArgs, resolveGlobalArgs } from './args.js';
import { findTarget, stagesNeeded } from './graph.js';
import { plan, resolveBases, stageIndex } from './plan.js';

export function outline(df: Dockerfile, options: Omit<PlanOptions, 'baseImages'> = {}): Outline {
  const buildPlatform = options.buildPlatform ?? DEFAULT_PLATFORM;
  const targetPlatform = options.platform ?? buildPlatform;
  const index = stageIndex(df, options.namedContexts);
  const target = findTarget(df.file, options.target, stageIndex(df));
  const globals = resolveGlobalArgs(df, options.buildArgs ?? {}, platformArgs(buildPlatform, targetPlatform));
  const bases = resolveBases(df, globals.env, index);
  const baseRefs: Outline['baseRefs'] = [];
  bases.forEach((b, stage) => {
    if (b.base.kind !== 'image') return;
    const entry: Outline['baseRefs'][number] = { stage, ref: b.base.ref };
    if (b.platform !== undefined) entry.platform = b.platform;
    baseRefs.push(entry);
  });
  // A dry plan (no base image env yet) finds COPY --from / RUN --mount images and stage deps.
  // Only the stages the target needs count for otherImageRefs (BuildKit resolves no more).
  const p = plan(df, { ...options });
  const needed = stagesNeeded(p);
  const refs = new Set<string>();
  for (const i of needed) for (const st of p.stages[i]!.steps) for (const r of st.imageInputs) refs.add(r);
  return { baseRefs, otherImageRefs: [...refs], stageNames: df.stages.map((s) => s.name), target, stagesNeeded: needed };
}
