import { createHash } from 'node:crypto';
import { appendHistory, appendLayer, emptyImage, sha256, type Image, type ImageConfig } from '@hoist/oci';
import type { Stage, Step } from '@hoist/parser';
import { applyConfig, DEFAULT_PATH, envGet, historyText } from './config-ops.js';
import { cacheKey, type CacheRecord } from './cache.js';
import { inputDigests } from './cache-inputs.js';
import { BuildError } from './errors.js';
import type { BuildContext, StageState } from './context.js';
import { executeRun, runArgs, runCacheInputs } from './run-step.js';
import { executeCopy, prepareCopy } from './copy-step.js';
import { executeWorkdir } from './workdir-step.js';
import { explainMiss, rememberChild } from './explain.js';

const EPOCH = '1970-01-01T00:00:00Z';

export function isoTime(ctx: BuildContext, d = new Date()): string {
  const sde = ctx.opts.sourceDateEpoch;
  return sde !== undefined ? new Date(sde * 1000).toISOString().replace('.000Z', 'Z') : d.toISOString();
}

/** Run a stage (memoised: a stage used by several others runs once). */
export function runStage(ctx: BuildContext, index: number): Promise<StageState> {
  let p = ctx.stageResults.get(index);
  if (!p) {
    p = buildStage(ctx, ctx.plan.stages[index]!, false);
    ctx.stageResults.set(index, p);
  }
  return p;
}

/**
 * Pass 1: a stage's cache keys and records, executing nothing. Keys never depend on a step's
 * result (only on the parent key and the step's inputs), so a whole build's keys are known up
 * front, and a stage whose output is fully cached downstream need never run.
 */
export function keyStage(ctx: BuildContext, index: number): Promise<StageState> {
  let p = ctx.keyResults.get(index);
  if (!p) {
    p = buildStage(ctx, ctx.plan.stages[index]!, true);
    ctx.keyResults.set(index, p);
  }
  return p;
}

/** The stages pass 2 must run for the target: those that are incomplete and actually read. */
export async function stagesToRun(ctx: BuildContext, target: number): Promise<number[]> {
  const out = new Set<number>();
  const visit = async (i: number): Promise<void> => {
    if (out.has(i)) return;
    const st = await keyStage(ctx, i);
    if (!st.incomplete) return;
    out.add(i);
    const base = ctx.plan.stages[i]!.base;
    if (base.kind === 'stage') await visit(base.index);
    for (const dep of st.readsFrom ?? []) await visit(dep);
  };
  await visit(target);
  return [...out];
}

async function baseState(ctx: BuildContext, stage: Stage, dry: boolean): Promise<StageState> {
  const base = stage.base;
  switch (base.kind) {
    case 'scratch': {
      const img = emptyImage(ctx.platform);
      return { img, key: sha256(`scratch ${JSON.stringify(ctx.platform)}`), lastCreated: EPOCH, cmdSet: false, records: [] };
    }
    case 'stage': {
      const parent = dry ? await keyStage(ctx, base.index) : await runStage(ctx, base.index);
      return { ...parent, cmdSet: false, readsFrom: [] };
    }
    case 'image': {
      const r = ctx.bases.get(base.ref);
      if (!r) throw new BuildError('BASE_IMAGE_NOT_FOUND', `base image ${base.ref} was not resolved`);
      const cfg = r.config.value;
      const config: ImageConfig = {
        ...cfg,
        config: { ...(cfg.config ?? {}) },
        rootfs: { type: 'layers', diff_ids: [...cfg.rootfs.diff_ids] },
        history: [...(cfg.history ?? [])],
      };
      delete config.config!.OnBuild;
      const img: Image = { config, layers: r.manifest.value.layers.map((l) => ({ ...l })) };
      return { img, key: sha256(`image ${r.descriptor.digest}`), lastCreated: cfg.created ?? EPOCH, cmdSet: false, records: [] };
    }
  }
}

/** BuildKit makes sure PATH is always set in the image's Env (appending the default). */
function withPath(state: StageState): StageState {
  const c = state.img.config.config ?? {};
  if (envGet(c.Env, 'PATH') !== undefined) return state;
  const config = { ...c, Env: [...(c.Env ?? []), `PATH=${DEFAULT_PATH}`] };
  return { ...state, img: { ...state.img, config: { ...state.img.config, config } } };
}

async function buildStage(ctx: BuildContext, stage: Stage, dry: boolean): Promise<StageState> {
  let state = withPath(await baseState(ctx, stage, dry));
  for (const step of stage.steps) {
    if (ctx.opts.signal?.aborted) throw new BuildError('CANCELLED', 'build cancelled');
    state = await runStep(ctx, stage, step, state, dry);
  }
  return state;
}

function location(ctx: BuildContext, stage: Stage, step: Step) {
  return {
    stage: stage.name ?? String(stage.index),
    step: ctx.label(stage.index, step),
    file: step.range.file,
    line: step.line,
    instruction: step.original.trim(),
  };
}

async function runStep(ctx: BuildContext, stage: Stage, step: Step, state: StageState, dry: boolean): Promise<StageState> {
  const ins = step.instruction;
  const label = ctx.label(stage.index, step);
  const shell = state.img.config.config?.Shell;
  const created = (): string => isoTime(ctx);
  const historyBy = historyText({
    keyword: step.keyword,
    ins,
    shell,
    historyArgs: step.historyArgs,
    ...(ins.kind === 'run' ? { runArgs: runArgs(ins, shell).args } : {}),
  });
  // WORKDIR / creates nothing, so BuildKit records it without a layer
  if (ins.kind !== 'run' && ins.kind !== 'copy' && !(ins.kind === 'workdir' && ins.path !== '/')) {
    const flags = { cmdSet: state.cmdSet };
    let img: Image = { ...state.img, config: { ...state.img.config, config: applyConfig(state.img.config.config ?? {}, ins, flags) } };
    if (ins.kind === 'maintainer') img = { ...img, config: { ...img.config, author: ins.name } };
    if (historyBy !== undefined) {
      img = appendHistory(img, { created: ctx.opts.sourceDateEpoch !== undefined ? created() : state.lastCreated, created_by: historyBy, comment: 'buildkit.dockerfile.v0' });
    }
    return { ...state, img, cmdSet: flags.cmdSet };
  }

  const t0 = Date.now();
  if (!dry) ctx.emit({ type: 'step', id: step.id, label, status: 'start' });
  let prepared: Awaited<ReturnType<typeof prepareCopy>> | undefined;
  try {
    let inputs: Record<string, unknown>;
    if (ins.kind === 'run') {
      inputs = await runCacheInputs(ctx, step, ins, state);
    } else if (ins.kind === 'copy') {
      // pass 1 selects and digests the sources once; pass 2 reuses that work
      prepared = ctx.preparedCopies.get(step.id) ?? (await prepareCopy(ctx, stage, step, ins, state));
      if (dry) ctx.preparedCopies.set(step.id, prepared);
      inputs = prepared.inputs;
    } else {
      inputs = { op: 'workdir', path: ins.path, user: state.img.config.config?.User ?? '' };
    }
    const key = cacheKey(state.key, inputs);
    let rec: CacheRecord | undefined = ctx.cacheDisabled(stage.name) ? undefined : await ctx.lookup(key);
    if (dry) {
      prepared = undefined;
      // the config change of WORKDIR applies whether or not the step is cached: later keys depend on it
      const cfg = (img: Image): Image => (ins.kind === 'workdir' ? { ...img, config: { ...img.config, config: applyConfig(img.config.config ?? {}, ins, { cmdSet: state.cmdSet }) } } : img);
      if (!rec) return { ...state, img: cfg(state.img), key, incomplete: true, readsFrom: [...(state.readsFrom ?? []), ...step.stageInputs] };
      const hist = { created: rec.created, created_by: historyBy ?? '', comment: 'buildkit.dockerfile.v0' };
      const img = rec.layer ? appendLayer(state.img, rec.layer.descriptor, rec.layer.diffId, hist) : appendHistory(state.img, hist);
      return { ...state, img: cfg(img), key, lastCreated: rec.created, records: withRecord(state, rec) };
    }
    if (rec) {
      ctx.stats.cached++;
      ctx.emit({ type: 'step', id: step.id, label, status: 'cached' });
    } else {
      const digests = inputDigests(state.key, inputs);
      if (ctx.opts.explainCache) ctx.emit({ type: 'info', message: `${label}: ${await explainMiss(ctx.cache, state.key, digests, ctx.cacheDisabled(stage.name), (ctx.opts.remoteCaches ?? []).flatMap((rc) => rc.children?.(state.key) ?? []))}` });
      const layer =
        ins.kind === 'run'
          ? await executeRun(ctx, stage, step, ins, state)
          : ins.kind === 'copy'
            ? await executeCopy(ctx, step, ins, state, prepared!)
            : await executeWorkdir(ctx, ins.path, state);
      // every RUN/COPY/ADD/WORKDIR adds a layer, even an empty one, as BuildKit does
      rec = { key, parent: state.key, created: created(), inputDigests: digests, layer };
      await ctx.cache.put(rec);
      await rememberChild(ctx.cache, state.key, rec);
      ctx.stats.executed++;
      if (ins.kind === 'run') ctx.stats.runSteps++;
      ctx.emit({ type: 'step', id: step.id, label, status: 'done', ms: Date.now() - t0 });
    }
    await prepared?.release();
    ctx.preparedCopies.delete(step.id);
    prepared = undefined;
    let img = state.img;
    if (ins.kind === 'workdir') {
      const flags = { cmdSet: state.cmdSet };
      img = { ...img, config: { ...img.config, config: applyConfig(img.config.config ?? {}, ins, flags) } };
    }
    const hist = { created: rec.created, created_by: historyBy ?? '', comment: 'buildkit.dockerfile.v0' };
    img = rec.layer ? appendLayer(img, rec.layer.descriptor, rec.layer.diffId, hist) : appendHistory(img, hist);
    return { ...state, img, key, lastCreated: rec.created, records: withRecord(state, rec) };
  } catch (e) {
    if (!dry) ctx.emit({ type: 'step', id: step.id, label, status: 'error', ms: Date.now() - t0 });
    await prepared?.release().catch(() => undefined);
    if (e instanceof BuildError && !e.location) {
      throw new BuildError(e.code, e.message, { cause: e.cause, location: location(ctx, stage, step), ...(e.outputTail ? { outputTail: e.outputTail } : {}), ...(e.exitCode !== undefined ? { exitCode: e.exitCode } : {}) });
    }
    throw e;
  }
}

/** The state's layer records with `rec` added (a record without a layer is no layer of the image). */
function withRecord(state: StageState, rec: CacheRecord): CacheRecord[] {
  return rec.layer ? [...state.records, rec] : state.records;
}

export function digestOf(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
