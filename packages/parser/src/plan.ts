/** `plan(df, options)`: typed stages -> the step DAG the builder runs. Pure. */
import type { Dockerfile, Node, StageAst } from './ast.js';
import { CHECK_BUILD_ARG } from './checks/config.js';
import type { BaseImageInfo, Instruction, ParseWarning, Plan, PlanOptions, Stage, StageBase, Step } from './plan-types.js';
import { fail, ParseError } from './errors.js';
import { at, parseInstruction } from './instructions.js';
import { expander } from './expand-word.js';
import { DEFAULT_PLATFORM, isValidPlatform, platformArgs, PLATFORM_ARGS, PROXY_ARGS, resolveGlobalArgs } from './args.js';
import { findCycle, findTarget, resolveFrom, stagesNeeded, type StageIndex } from './graph.js';
import { isValidReference } from './refs.js';
import { lex } from './lexer.js';
import { resolveStep } from './steps.js';
import { argSnapshot, stateFromImage, stateFromStage, type StageState } from './state.js';

export interface ResolvedBase {
  base: StageBase;
  platform?: string;
}

/** Expands and classifies each FROM with the global ARGs. */
export function resolveBases(df: Dockerfile, globalEnv: Map<string, string>, index: StageIndex): ResolvedBase[] {
  return df.stages.map((st, i) => {
    const x = expander(df, st.node, (n) => globalEnv.get(n));
    const name = x(st.baseName);
    if (name === '') fail('EmptyBaseName', at(st.node, df.file, st.baseName), `base name (${st.baseName}) should not be blank`, 'give the variable a default with ARG before the first FROM, or pass it with --build-arg');
    const out: ResolvedBase = { base: { kind: 'scratch' } };
    if (st.platform !== undefined) {
      const p = x(st.platform);
      if (p !== '') {
        if (!isValidPlatform(p)) fail('InvalidPlatform', at(st.node, df.file, '--platform'), `failed to parse platform ${p}`, 'platforms look like linux/amd64 or linux/arm64/v8');
        out.platform = p;
      }
    }
    if (name === 'scratch') return out;
    const j = index.byName.get(name.toLowerCase());
    if (j !== undefined && j < i) {
      out.base = { kind: 'stage', index: j, name: df.stages[j]!.name! };
      return out;
    }
    // BuildKit only looks at earlier stages, so `FROM golang AS golang` names the image. A later
    // stage's name is almost certainly a mistake (BuildKit would try to pull it): reject it.
    if (j !== undefined && j > i) {
      fail('ForwardReference', at(st.node, df.file, st.baseName), `FROM ${name} refers to stage "${df.stages[j]!.name}" defined later (line ${df.stages[j]!.node.startLine})`, 'a stage can only build on stages defined before it; move that stage up');
    }
    if (!isValidReference(name)) fail('InvalidFrom', at(st.node, df.file, st.baseName), `invalid reference format: ${JSON.stringify(name)}`, 'image references are lower-case, e.g. docker.io/library/alpine:3.20');
    out.base = { kind: 'image', ref: name };
    return out;
  });
}

/**
 * Stage names by lower-cased name. Names in `overridden` (named build contexts, `--build-context
 * NAME=…`) are left out: as in BuildKit, such a name means the context, not the stage.
 */
export function stageIndex(df: Dockerfile, overridden: readonly string[] = []): StageIndex {
  const byName = new Map<string, number>();
  const skip = new Set(overridden.map((n) => n.toLowerCase()));
  df.stages.forEach((s, i) => {
    if (s.name !== undefined && !skip.has(s.name.toLowerCase())) byName.set(s.name.toLowerCase(), i);
  });
  return { byName, count: df.stages.length };
}

function culpritColumn(df: Dockerfile, stage: number, line: number): number {
  const c = df.stages[stage]!.commands.find((cmd) => cmd.node.startLine === line);
  if (!c) return 1;
  const i = c.node.firstLine.search(/--from|from=/);
  return i < 0 ? c.node.column : i + 1;
}

function stageLabel(df: Dockerfile, i: number): string {
  return df.stages[i]!.name ?? String(i);
}

/** Why a step may not read stage `from`: BuildKit's messages for COPY --from and RUN --mount from=. */
function forwardMessage(df: Dockerfile, si: number, step: Step, from: number): string {
  const ins = step.instruction;
  if (ins.kind === 'run') {
    const index = stageIndex(df);
    const reads = (f: string | undefined): boolean => {
      const r = f === undefined ? undefined : resolveFrom(f, index);
      return r?.kind === 'stage' && r.index === from;
    };
    const m = ins.mounts.find((x) => (x.type === 'bind' || x.type === 'cache') && reads(x.from));
    const named = m && (m.type === 'bind' || m.type === 'cache') ? m : undefined;
    return `cannot mount from stage "${named?.from ?? stageLabel(df, from)}" to "${named?.target ?? ''}", stage needs to be defined before current command`;
  }
  const name = ins.kind === 'copy' && ins.from !== undefined ? ins.from : stageLabel(df, from);
  return `cannot copy from stage "${name}", it needs to be defined before current stage "${df.stages[si]!.name ?? `stage-${si}`}"`;
}

/**
 * BuildKit builds the stages a target needs in file order: a COPY --from or RUN --mount from=
 * naming a stage defined later fails at its line (stages the target does not need are not checked).
 */
function checkForwardSources(df: Dockerfile, stages: Stage[], target: number): void {
  for (const si of stagesNeeded({ stages, target })) {
    for (const step of stages[si]!.steps) {
      const later = step.stageInputs.find((d) => d > si);
      if (later === undefined) continue;
      throw new ParseError({
        code: 'ForwardReference',
        file: df.file,
        line: step.line,
        column: culpritColumn(df, si, step.line),
        message: forwardMessage(df, si, step, later),
        hint: `stage "${stageLabel(df, later)}" is defined at line ${df.stages[later]!.node.startLine}: move it above line ${df.stages[si]!.node.startLine}, before the stage that reads it`,
      });
    }
  }
}

interface Walk {
  df: Dockerfile;
  index: StageIndex;
  buildArgs: Record<string, string>;
  globals: Map<string, string | undefined>;
  /** ARG names declared per stage. */
  usedArgs: Array<Set<string>>;
  baseImages: Record<string, BaseImageInfo>;
}

function makeStep(w: Walk, si: number, k: number, node: Node, ins: Instruction, state: StageState, original?: string): Step {
  const used = (w.usedArgs[si] ??= new Set());
  const resolved = resolveStep(ins, { df: w.df, node, state, buildArgs: w.buildArgs, globals: w.globals, usedArgs: used });
  if (resolved.kind === 'arg' || resolved.kind === 'env') delete state.snapshot;
  const snap = argSnapshot(state);
  const stageInputs: number[] = [];
  const imageInputs: string[] = [];
  const addSource = (value: string, token: string): number | undefined => {
    const ref = resolveFrom(value, w.index);
    if (ref.kind === 'stage') {
      if (!stageInputs.includes(ref.index)) stageInputs.push(ref.index);
      return ref.index;
    }
    if (ref.kind === 'invalid-index') fail('UnknownStage', at(node, w.df.file, token), `invalid stage index ${ref.index}: the Dockerfile has ${w.index.count} stage(s)`, 'refer to an earlier stage by its name or index (0-based)');
    if (!imageInputs.includes(ref.ref)) imageInputs.push(ref.ref);
    return undefined;
  };
  if (resolved.kind === 'copy' && resolved.from !== undefined) {
    const idx = addSource(resolved.from, '--from');
    if (idx !== undefined) resolved.fromStage = idx;
  }
  if (resolved.kind === 'run') for (const m of resolved.mounts) if ((m.type === 'bind' || m.type === 'cache') && m.from !== undefined) addSource(m.from, 'from=');
  return {
    id: `${si}.${k}`,
    kind: resolved.kind,
    instruction: resolved,
    keyword: resolved.kind === 'copy' ? (resolved.add ? 'ADD' : 'COPY') : node.keyword.toUpperCase(),
    original: original ?? node.original,
    line: node.startLine,
    range: { file: w.df.file, startLine: node.startLine, endLine: node.endLine },
    buildArgs: snap.args,
    historyArgs: snap.history,
    stageInputs,
    imageInputs,
  };
}

/** Parses ONBUILD trigger expressions inherited from the base. */
function triggerSteps(w: Walk, si: number, st: StageAst, triggers: string[], state: StageState, steps: Step[]): void {
  for (const expr of triggers) {
    let nodes: Node[];
    try {
      nodes = lex(expr, w.df.file).nodes;
    } catch (e) {
      if (e instanceof ParseError) fail('InvalidOnbuild', at(st.node, w.df.file), `invalid ONBUILD trigger ${JSON.stringify(expr)} from the base image: ${e.message}`, 'fix or rebuild the base image');
      throw e;
    }
    for (const n of nodes) {
      n.startLine = st.node.startLine;
      n.endLine = st.node.endLine;
      n.column = st.node.column;
      n.firstLine = st.node.firstLine;
      if (n.keyword === 'onbuild' || n.keyword === 'from' || n.keyword === 'maintainer') {
        fail('InvalidOnbuild', at(st.node, w.df.file), `${n.keyword.toUpperCase()} isn't allowed as an ONBUILD trigger`, 'fix or rebuild the base image');
      }
      const ins = parseInstruction(n, w.df.file);
      const step = makeStep(w, si, steps.length, n, ins, state, n.original);
      step.fromOnBuild = true;
      steps.push(step);
    }
  }
}

export function plan(df: Dockerfile, options: PlanOptions = {}): Plan {
  const buildArgs = options.buildArgs ?? {};
  const buildPlatform = options.buildPlatform ?? DEFAULT_PLATFORM;
  const targetPlatform = options.platform ?? buildPlatform;
  const index = stageIndex(df, options.namedContexts);
  const target = findTarget(df.file, options.target, stageIndex(df));
  const globals = resolveGlobalArgs(df, buildArgs, platformArgs(buildPlatform, targetPlatform));
  const bases = resolveBases(df, globals.env, index);
  const walk: Walk = { df, index, buildArgs, globals: new Map([...platformArgs(buildPlatform, targetPlatform), ...globals.declared]), usedArgs: [], baseImages: options.baseImages ?? {} };
  const finals: StageState[] = [];
  const stages: Stage[] = df.stages.map((st, si) => {
    const { base, platform } = bases[si]!;
    let state: StageState;
    if (base.kind === 'stage') state = stateFromStage(finals[base.index]!);
    else state = stateFromImage(base.kind === 'image' ? walk.baseImages[base.ref] : undefined, base.kind === 'scratch');
    const steps: Step[] = [];
    const triggers = state.onBuild;
    state.onBuild = [];
    triggerSteps(walk, si, st, triggers, state, steps);
    for (const c of st.commands) steps.push(makeStep(walk, si, steps.length, c.node, c.instruction, state));
    finals[si] = state;
    const deps = new Set<number>();
    if (base.kind === 'stage') deps.add(base.index);
    for (const s of steps) for (const d of s.stageInputs) deps.add(d);
    const dependsOnIndex = [...deps].sort((a, b) => a - b);
    const lastLine = st.commands.length > 0 ? st.commands[st.commands.length - 1]!.node.endLine : st.node.endLine;
    const stage: Stage = {
      index: si,
      base,
      dependsOn: dependsOnIndex.map((d) => stageLabel(df, d)),
      dependsOnIndex,
      steps,
      range: { file: df.file, startLine: st.node.startLine, endLine: lastLine },
    };
    if (st.name !== undefined) stage.name = st.name;
    if (platform !== undefined) stage.platform = platform;
    return stage;
  });
  const cycle = findCycle(stages);
  if (cycle) {
    const culprit = stages[cycle.stage]!.steps.find((s) => s.stageInputs.includes(cycle.via));
    const line = culprit?.line ?? stages[cycle.stage]!.range.startLine;
    throw new ParseError({ code: 'StageCycle', file: df.file, line, column: culpritColumn(df, cycle.stage, line), message: `circular dependency detected on stage: ${stageLabel(df, cycle.stage)}`, hint: 'a stage cannot copy from itself or from a stage that depends on it' });
  }
  checkForwardSources(df, stages, target);
  // BuildKit's build checks (NoEmptyContinuation, SecretsUsedInArgOrEnv, ...) come from lint()
  const warnings: ParseWarning[] = [];
  // Like BuildKit: a build-arg counts as used when a global ARG or an ARG in a stage that the
  // target needs declares it.
  const usedArgs = new Set<string>(globals.declared.keys());
  for (const i of stagesNeeded({ stages, target })) for (const k of walk.usedArgs[i] ?? []) usedArgs.add(k);
  for (const k of Object.keys(buildArgs)) {
    if (!usedArgs.has(k) && !PROXY_ARGS.includes(k) && !PLATFORM_ARGS.includes(k) && k !== CHECK_BUILD_ARG) {
      warnings.push({ code: 'UnusedBuildArg', message: `build-arg ${k} was provided but not consumed by any ARG instruction` });
    }
  }
  const proxyArgs: Array<[string, string]> = PROXY_ARGS.filter((k) => Object.prototype.hasOwnProperty.call(buildArgs, k)).map((k) => [k, buildArgs[k]!]);
  const named = stageOverrides(df, options.namedContexts);
  return { file: df.file, stages, target, warnings, directives: { ...df.directives }, proxyArgs, ...(named.length > 0 ? { namedContexts: named } : {}) };
}

/** The stage names a named build context overrides (lower-cased). */
function stageOverrides(df: Dockerfile, named: readonly string[] | undefined): string[] {
  const set = new Set((named ?? []).map((n) => n.toLowerCase()));
  return df.stages.flatMap((s) => (s.name !== undefined && set.has(s.name.toLowerCase()) ? [s.name.toLowerCase()] : []));
}
