import { appendHistory, appendLayer, type Image } from '@hoist/oci';
import type { Instruction, Stage, Step } from '@hoist/parser';
import { applyConfig, historyText } from './config-ops.js';
import { cacheKey, type CacheRecord } from './cache.js';
import { inputDigests } from './cache-inputs.js';
import { BuildError } from './errors.js';
import type { BuildSession } from './session.js';
import type { PreparedCopy, StageInputs, StageState } from './state.js';
import { executeRun, runArgs, runCacheInputs } from './run-step.js';
import { executeCopy, prepareCopy } from './copy-step.js';
import { executeWorkdir } from './workdir-step.js';
import { explainMiss } from './explain.js';

type Layer = NonNullable<CacheRecord['layer']>;

/** One step as the solver hands it over: the stage state so far and its inputs. */
export interface StepArgs {
  stage: Stage;
  step: Step;
  state: StageState;
  /** Pass 1: compute the key and look it up, execute nothing. */
  dry: boolean;
  stages: StageInputs;
  /** COPY sources selected in pass 1, by step id (reused and released by pass 2). */
  prepared: Map<string, PreparedCopy>;
}

/** The record time of a step: SOURCE_DATE_EPOCH when set, else now (RFC 3339). */
export function isoTime(s: BuildSession, d = new Date()): string {
  const sde = s.opts.sourceDateEpoch;
  return sde !== undefined ? new Date(sde * 1000).toISOString().replace('.000Z', 'Z') : d.toISOString();
}

/** Apply one step to a stage's state: a config change, or a cached or executed layer. */
export async function solveStep(s: BuildSession, a: StepArgs): Promise<StageState> {
  const ins = a.step.instruction;
  if (ins.kind !== 'run' && ins.kind !== 'copy' && !(ins.kind === 'workdir' && ins.path !== '/')) return metadataStep(s, a);
  return layerStep(s, a);
}

function historyOf(a: StepArgs): string | undefined {
  const ins = a.step.instruction;
  const shell = a.state.img.config.config?.Shell;
  return historyText({ keyword: a.step.keyword, ins, shell, historyArgs: a.step.historyArgs, ...(ins.kind === 'run' ? { runArgs: runArgs(ins, shell).args } : {}) });
}

/** A step that only changes the config (WORKDIR / creates nothing, so BuildKit records it without a layer). */
function metadataStep(s: BuildSession, a: StepArgs): StageState {
  const { state } = a;
  const ins = a.step.instruction;
  const historyBy = historyOf(a);
  const flags = { cmdSet: state.cmdSet };
  let img: Image = { ...state.img, config: { ...state.img.config, config: applyConfig(state.img.config.config ?? {}, ins, flags) } };
  if (ins.kind === 'maintainer') img = { ...img, config: { ...img.config, author: ins.name } };
  if (historyBy !== undefined) {
    img = appendHistory(img, { created: s.opts.sourceDateEpoch !== undefined ? isoTime(s) : state.lastCreated, created_by: historyBy, comment: 'buildkit.dockerfile.v0' });
  }
  return { ...state, img, cmdSet: flags.cmdSet };
}

/** The config change of WORKDIR applies whether or not the step is cached: later keys depend on it. */
function withConfig(img: Image, ins: Instruction, cmdSet: boolean): Image {
  return ins.kind === 'workdir' ? { ...img, config: { ...img.config, config: applyConfig(img.config.config ?? {}, ins, { cmdSet }) } } : img;
}

/** The state after a layer step, from its record (cached or just made). */
function applyRecord(a: StepArgs, key: string, rec: CacheRecord): StageState {
  const { state } = a;
  const hist = { created: rec.created, created_by: historyOf(a) ?? '', comment: 'buildkit.dockerfile.v0' };
  let img = withConfig(state.img, a.step.instruction, state.cmdSet);
  img = rec.layer ? appendLayer(img, rec.layer.descriptor, rec.layer.diffId, hist) : appendHistory(img, hist);
  return { ...state, img, key, lastCreated: rec.created, records: rec.layer ? [...state.records, rec] : state.records };
}

/** A step's cache inputs (RUN, COPY/ADD, WORKDIR); a COPY's prepared sources are kept for pass 2. */
async function stepInputs(s: BuildSession, a: StepArgs): Promise<{ inputs: Record<string, unknown>; prepared?: PreparedCopy }> {
  const ins = a.step.instruction;
  if (ins.kind === 'run') return { inputs: await runCacheInputs(s, a.step, ins, a.state, a.stages) };
  if (ins.kind === 'copy') {
    // pass 1 selects and digests the sources once; pass 2 reuses that work
    const prepared = a.prepared.get(a.step.id) ?? (await prepareCopy(s, ins, a.state, a.stages));
    if (a.dry) a.prepared.set(a.step.id, prepared);
    return { inputs: prepared.inputs, prepared };
  }
  return { inputs: { op: 'workdir', path: ins.kind === 'workdir' ? ins.path : '', user: a.state.img.config.config?.User ?? '' } };
}

async function layerStep(s: BuildSession, a: StepArgs): Promise<StageState> {
  const { stage, step, state, dry } = a;
  const label = s.label(stage.index, step);
  const t0 = Date.now();
  if (!dry) s.emit({ type: 'step', id: step.id, label, status: 'start' });
  let prepared: PreparedCopy | undefined;
  try {
    const got = await stepInputs(s, a);
    prepared = got.prepared;
    const key = cacheKey(state.key, got.inputs);
    let rec = s.cacheDisabled(stage.name) ? undefined : await s.lookup(key);
    if (dry) {
      if (!rec) return { ...state, img: withConfig(state.img, step.instruction, state.cmdSet), key, incomplete: true, readsFrom: [...(state.readsFrom ?? []), ...step.stageInputs] };
      return applyRecord(a, key, rec);
    }
    if (rec) {
      s.stats.cached++;
      s.emit({ type: 'step', id: step.id, label, status: 'cached' });
    } else {
      rec = await executeStep(s, a, { key, inputs: got.inputs, prepared, label });
      s.emit({ type: 'step', id: step.id, label, status: 'done', ms: Date.now() - t0 });
    }
    await prepared?.release();
    a.prepared.delete(step.id);
    prepared = undefined;
    return applyRecord(a, key, rec);
  } catch (e) {
    if (!dry) s.emit({ type: 'step', id: step.id, label, status: 'error', ms: Date.now() - t0 });
    await prepared?.release().catch(() => undefined);
    throw located(s, a, e);
  }
}

/** Execute a step that missed the cache, and record its layer (every RUN/COPY/ADD/WORKDIR adds one, even empty, as BuildKit does). */
async function executeStep(s: BuildSession, a: StepArgs, k: { key: string; inputs: Record<string, unknown>; prepared: PreparedCopy | undefined; label: string }): Promise<CacheRecord> {
  const { stage, step, state } = a;
  const ins = step.instruction;
  const digests = inputDigests(state.key, k.inputs);
  if (s.opts.explainCache) {
    const imported = (s.opts.remoteCaches ?? []).flatMap((rc) => rc.children?.(state.key) ?? []);
    s.emit({ type: 'info', message: `${k.label}: ${await explainMiss(s.cache, state.key, digests, s.cacheDisabled(stage.name), imported)}` });
  }
  let layer: Layer;
  if (ins.kind === 'run') layer = await executeRun(s, stage, step, ins, state, a.stages);
  else if (ins.kind === 'copy') layer = await executeCopy(s, ins, state, k.prepared!);
  else layer = await executeWorkdir(s, ins.kind === 'workdir' ? ins.path : '/', state);
  const rec: CacheRecord = { key: k.key, parent: state.key, created: isoTime(s), inputDigests: digests, layer };
  await s.cache.put(rec);
  await s.cache.addChild?.(state.key, rec);
  s.stats.executed++;
  if (ins.kind === 'run') s.stats.runSteps++;
  return rec;
}

/** A build error names the stage, step and Dockerfile line. */
function located(s: BuildSession, a: StepArgs, e: unknown): unknown {
  if (!(e instanceof BuildError) || e.location) return e;
  const location = { stage: a.stage.name ?? String(a.stage.index), step: s.label(a.stage.index, a.step), file: a.step.range.file, line: a.step.line, instruction: a.step.original.trim() };
  return new BuildError(e.code, e.message, { cause: e.cause, location, ...(e.outputTail ? { outputTail: e.outputTail } : {}), ...(e.exitCode !== undefined ? { exitCode: e.exitCode } : {}) });
}
