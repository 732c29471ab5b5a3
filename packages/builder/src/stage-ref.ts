import { resolveFrom, type Plan, type SourceRef } from '@hoist/parser';

/**
 * What a `from=` names, by the planner's own rule (a stage by name, case-insensitive, or by
 * index; anything else is an image): the builder never re-decides it.
 */
export function stageRef(plan: Plan, from: string): SourceRef {
  const byName = new Map<string, number>();
  const overridden = new Set(plan.namedContexts ?? []);
  for (const s of plan.stages) if (s.name !== undefined && !overridden.has(s.name.toLowerCase())) byName.set(s.name.toLowerCase(), s.index);
  return resolveFrom(from, { byName, count: plan.stages.length });
}
