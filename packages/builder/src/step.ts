import { appendHistory, appendLayer, type Image } from '@hoist/oci';
import type { Instruction, Stage, Step } from '@hoist/parser';
import { applyConfig, historyText } from './config-ops.js';
import { cacheKey, type CacheRecord } from './cache.js';
import { inputDigests } from './cache-inputs.js';
import { BuildError } from './errors.js';
import type { BuildSession } from './session.js';
import type { PreparedCopy, StageInputs, StageState } from './state.js';
import { runArgs, runCacheInputs } from './run-step.js';
import { executeRun } from './run-exec.js';
import { executeCopy, prepareCopy } from './copy-step.js';
import { executeWorkdir } from './workdir-step.js';
import { explainMiss } from './explain.js';
import { isLayerStep } from './layer-step.js';

type Layer = NonNullable<CacheRecord['layer']>;

/** One step as the solver hands it over: the stage state so far and the stages it reads. */
export interface StepArgs {
  stage: Stage;
  step: Step;
  state: StageState;
  stages: StageInputs;
  /** COPY sources selected in pass 1, by step id (reused and released by pass 2). */
  prepared: Map<string, PreparedCopy>;
}

/**
 * A step after pass 1, what pass 2 walks: for a layer step its cache key, its inputs, and the
 * record pass 1 found (a hit needs no second lookup). Both passes go over the same ops.
 */
export interface Op {
  step: Step;
  stages: StageInputs;
  layer?: { key: string; inputs: Record<string, unknown>; hit?: CacheRecord };
}

/** The record time of a step: SOURCE_DATE_EPOCH when set, else now (RFC 3339). */
export function isoTime(s: BuildSession, d = new Date()): string {
  const sde = s.opts.sourceDateEpoch;
  return sde !== undefined ? new Date(sde * 1000).toISOString().replace('.000Z', 'Z') : d.toISOString();
}

/** Pass 1: a step's op (key and inputs, the record found) and the state as far as the cache knows it. */
export async function keyStep(s: BuildSession, a: StepArgs): Promise<{ op: Op; state: StageState }> {
  if (!isLayerStep(a.step.instruction)) return { op: { step: a.step, stages: a.stages }, state: metadataStep(s, a) };
  const { stage, step, state } = a;
  try {
    const { inputs } = await stepInputs(s, a);
    const key = cacheKey(state.key, inputs);
    const hit = s.cacheDisabled(stage.name) ? undefined : await s.lookup(key);
    const op: Op = { step, stages: a.stages, layer: { key, inputs, ...(hit ? { hit } : {}) } };
    if (hit) return { op, state: applyRecord(a, key, hit) };
    const incomplete = { key, incomplete: true, readsFrom: [...(state.readsFrom ?? []), ...step.stageInputs] };
    return { op, state: { ...state, img: withConfig(state.img, step.instruction, state.cmdSet), ...incomplete } };
  } catch (e) {
    await releasePrepared(a);
    throw located(s, a, e);
  }
}

/** Pass 2: apply an op to the stage's state, executing a layer step that has no record. */
export async function runOp(s: BuildSession, a: Omit<StepArgs, 'step' | 'stages'> & { op: Op }): Promise<StageState> {
  const args: StepArgs = { stage: a.stage, state: a.state, prepared: a.prepared, step: a.op.step, stages: a.op.stages };
  if (!a.op.layer) return metadataStep(s, args);
  return layerStep(s, args, a.op.layer);
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
    a.prepared.set(a.step.id, prepared);
    return { inputs: prepared.inputs, prepared };
  }
  return { inputs: { op: 'workdir', path: ins.kind === 'workdir' ? ins.path : '', user: a.state.img.config.config?.User ?? '' } };
}

async function releasePrepared(a: StepArgs, opts: { quiet: boolean } = { quiet: true }): Promise<void> {
  const p = a.prepared.get(a.step.id);
  a.prepared.delete(a.step.id);
  if (opts.quiet) await p?.release().catch(() => undefined);
  else await p?.release();
}

/** A layer step in pass 2: cached (found in pass 1, or made meanwhile by another stage) or executed. */
async function layerStep(s: BuildSession, a: StepArgs, layer: NonNullable<Op['layer']>): Promise<StageState> {
  const { stage, step } = a;
  const label = s.label(stage.index, step);
  const t0 = Date.now();
  s.emit({ type: 'step', id: step.id, label, status: 'start' });
  try {
    let rec = layer.hit ?? (s.cacheDisabled(stage.name) ? undefined : await s.lookup(layer.key));
    if (rec) {
      s.stats.stepCached();
      s.emit({ type: 'step', id: step.id, label, status: 'cached' });
    } else {
      const prepared = step.instruction.kind === 'copy' ? (await stepInputs(s, a)).prepared : undefined;
      rec = await executeStep(s, a, { key: layer.key, inputs: layer.inputs, prepared, label });
      s.emit({ type: 'step', id: step.id, label, status: 'done', ms: Date.now() - t0 });
    }
    await releasePrepared(a, { quiet: false });
    return applyRecord(a, layer.key, rec);
  } catch (e) {
    s.emit({ type: 'step', id: step.id, label, status: 'error', ms: Date.now() - t0 });
    await releasePrepared(a);
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
  if (ins.kind === 'run') layer = await executeRun(s, { step, ins, state, stages: a.stages });
  else if (ins.kind === 'copy') layer = await executeCopy(s, ins, state, k.prepared!);
  else layer = await executeWorkdir(s, ins.kind === 'workdir' ? ins.path : '/', state);
  const rec: CacheRecord = { key: k.key, parent: state.key, created: isoTime(s), inputDigests: digests, layer };
  s.record(rec);
  s.stats.stepExecuted({ run: ins.kind === 'run' });
  return rec;
}

/** A build error names the stage, step and Dockerfile line. */
function located(s: BuildSession, a: StepArgs, e: unknown): unknown {
  if (!(e instanceof BuildError) || e.location) return e;
  const location = { stage: a.stage.name ?? String(a.stage.index), step: s.label(a.stage.index, a.step), file: a.step.range.file, line: a.step.line, instruction: a.step.original.trim() };
  return new BuildError(e.code, e.message, { cause: e.cause, location, ...(e.outputTail ? { outputTail: e.outputTail } : {}), ...(e.exitCode !== undefined ? { exitCode: e.exitCode } : {}) });
}
