/** `formatPlan(plan, format)`: JSON (stable, for goldens and tools), Graphviz dot, or text. */
import type { Plan, Stage, StageBase, Step } from './plan-types.js';
import { assertNever } from './errors.js';
import { stagesNeeded } from './graph.js';

export type PlanFormat = 'json' | 'dot' | 'text';

function baseLabel(b: StageBase): string {
  switch (b.kind) {
    case 'scratch':
      return 'scratch';
    case 'image':
      return b.ref;
    case 'stage':
      return b.name ?? String(b.index);
    default:
      return assertNever(b);
  }
}

function stepJson(s: Step): Record<string, unknown> {
  const { kind: _k, ...value } = s.instruction as unknown as Record<string, unknown>;
  void _k;
  const out: Record<string, unknown> = { id: s.id, instruction: s.keyword, line: s.line };
  if (s.range.endLine !== s.line) out.endLine = s.range.endLine;
  out.original = s.original;
  out.value = value;
  if (s.buildArgs.length > 0) out.buildArgs = Object.fromEntries(s.buildArgs);
  if (s.stageInputs.length > 0) out.stageInputs = s.stageInputs;
  if (s.imageInputs.length > 0) out.imageInputs = s.imageInputs;
  if (s.fromOnBuild) out.fromOnBuild = true;
  return out;
}

function stageJson(st: Stage, needed: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = { name: st.name ?? null, index: st.index, base: baseLabel(st.base), baseKind: st.base.kind };
  // as `plan --format text` says "(not needed by the target: skipped)"; absent when needed
  if (!needed) out.skipped = true;
  if (st.platform !== undefined) out.platform = st.platform;
  out.dependsOn = st.dependsOn;
  out.steps = st.steps.map(stepJson);
  return out;
}

export function planToJson(plan: Plan): unknown {
  const needed = new Set(stagesNeeded(plan));
  const out: Record<string, unknown> = { target: plan.target, stages: plan.stages.map((st) => stageJson(st, needed.has(st.index))) };
  if (Object.keys(plan.directives).length > 0) out.directives = plan.directives;
  if (plan.warnings.length > 0) out.warnings = plan.warnings;
  return out;
}

function dotQuote(s: string): string {
  return '"' + s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') + '"';
}

function short(s: string, n = 60): string {
  const one = s.replace(/\s+/g, ' ');
  return one.length > n ? one.slice(0, n - 1) + '…' : one;
}

function toDot(plan: Plan): string {
  const out = ['digraph plan {', '  rankdir=LR;', '  node [shape=box, fontname="monospace"];'];
  const images = new Set<string>();
  const needed = new Set(stagesNeeded(plan));
  for (const st of plan.stages) {
    const label = st.name ?? `stage ${st.index}`;
    out.push(`  subgraph cluster_${st.index} {`, `    label=${dotQuote(`${label} (FROM ${baseLabel(st.base)})`)};`);
    if (st.index === plan.target) out.push('    style=bold;');
    else if (!needed.has(st.index)) out.push('    style=dashed; color=gray; fontcolor=gray;');
    out.push(`    s${st.index}_base [label=${dotQuote(`FROM ${baseLabel(st.base)}`)}, shape=oval];`);
    let prev = `s${st.index}_base`;
    for (const step of st.steps) {
      const id = `s${step.id.replace('.', '_')}`;
      out.push(`    ${id} [label=${dotQuote(`${step.line}: ${short(step.original)}`)}];`);
      out.push(`    ${prev} -> ${id};`);
      prev = id;
    }
    out.push(`    s${st.index}_end [label=${dotQuote(label)}, shape=doubleoctagon];`, `    ${prev} -> s${st.index}_end;`, '  }');
  }
  for (const st of plan.stages) {
    if (st.base.kind === 'stage') out.push(`  s${st.base.index}_end -> s${st.index}_base [style=bold];`);
    if (st.base.kind === 'image') images.add(st.base.ref);
    for (const step of st.steps) {
      const id = `s${step.id.replace('.', '_')}`;
      for (const d of step.stageInputs) out.push(`  s${d}_end -> ${id} [style=dashed];`);
      for (const r of step.imageInputs) {
        images.add(r);
        out.push(`  ${dotQuote('image:' + r)} -> ${id} [style=dashed];`);
      }
    }
  }
  for (const r of images) out.push(`  ${dotQuote('image:' + r)} [label=${dotQuote(r)}, shape=cylinder];`);
  for (const st of plan.stages) if (st.base.kind === 'image') out.push(`  ${dotQuote('image:' + st.base.ref)} -> s${st.index}_base;`);
  out.push('}');
  return out.join('\n') + '\n';
}

function toText(plan: Plan): string {
  const out: string[] = [];
  const needed = new Set(stagesNeeded(plan));
  for (const st of plan.stages) {
    const mark = st.index === plan.target ? ' (target)' : needed.has(st.index) ? '' : ' (not needed by the target: skipped)';
    const plat = st.platform ? ` --platform=${st.platform}` : '';
    const deps = st.dependsOn.length > 0 ? `  <- ${st.dependsOn.join(', ')}` : '';
    out.push(`stage ${st.index}${st.name ? ` ${st.name}` : ''}${mark}: FROM${plat} ${baseLabel(st.base)}${deps}`);
    for (const s of st.steps) out.push(`  ${s.id.padEnd(6)} L${String(s.line).padEnd(5)} ${short(s.original, 100)}`);
  }
  for (const w of plan.warnings) out.push(`warning[${w.code}]${w.line ? ` line ${w.line}` : ''}: ${w.message}`);
  return out.join('\n') + '\n';
}

export function formatPlan(plan: Plan, format: PlanFormat = 'json'): string {
  switch (format) {
    case 'json':
      return JSON.stringify(planToJson(plan), null, 2) + '\n';
    case 'dot':
      return toDot(plan);
    case 'text':
      return toText(plan);
    default:
      return assertNever(format);
  }
}
