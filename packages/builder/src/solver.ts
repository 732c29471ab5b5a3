import { emptyImage, sha256, type Image, type ImageConfig } from '@hoist/oci';
import type { Stage, Step } from '@hoist/parser';
import { syscalls } from '@hoist/snapshotter';
import { DEFAULT_PATH, envGet } from './config-ops.js';
import { BuildError } from './errors.js';
import type { BuildSession } from './session.js';
import type { PreparedCopy, StageInputs, StageState } from './state.js';
import type { ResolvedImage } from './types.js';
import { keyStep, runOp, type Op } from './step.js';
import { baseKey, stagePlatform } from './platforms.js';
import { prepareAhead } from './run-prep.js';

const EPOCH = '1970-01-01T00:00:00Z';

/** A stage after pass 1: its ops, and its state as far as the cache knows it. */
interface KeyedStage {
  ops: Op[];
  state: StageState;
}

/**
 * The scheduler of one build. Pass 1 (`key`) turns every stage into ops with their cache keys
 * and the records found, executing nothing: keys never depend on a step's result, only on the
 * parent key and the step's inputs, so a whole build's keys are known up front. Pass 2 (`run`)
 * walks the same ops, each stage at most once and only on demand, executing the misses. Steps
 * get the stages they read as lazy handles (`StageInputs`) and never call back in here.
 */
export class Solver {
  private readonly results = new Map<number, Promise<StageState>>();
  private readonly keys = new Map<number, Promise<KeyedStage>>();
  /** COPY/ADD sources selected in pass 1, by step id, reused by pass 2 (released at the end). */
  private readonly prepared = new Map<string, PreparedCopy>();

  constructor(
    readonly session: BuildSession,
    /** The base images of the FROM lines, resolved before planning, by {@link baseKey}. */
    private readonly bases: ReadonlyMap<string, ResolvedImage>,
  ) {}

  /** Run a stage (memoised: a stage used by several others runs once). */
  run(index: number): Promise<StageState> {
    let p = this.results.get(index);
    if (!p) {
      p = this.runStage(index);
      this.results.set(index, p);
    }
    return p;
  }

  /** A stage's keys and cached records, executing nothing (memoised). */
  async key(index: number): Promise<StageState> {
    return (await this.keyed(index)).state;
  }

  private keyed(index: number): Promise<KeyedStage> {
    let p = this.keys.get(index);
    if (!p) {
      p = this.keyStage(index);
      this.keys.set(index, p);
    }
    return p;
  }

  /** The stages pass 2 must run for the target: those that are incomplete and actually read. */
  async stagesToRun(target: number): Promise<number[]> {
    const out = new Set<number>();
    const visit = async (i: number): Promise<void> => {
      if (out.has(i)) return;
      const st = await this.key(i);
      if (!st.incomplete) return;
      out.add(i);
      const base = this.session.plan.stages[i]!.base;
      if (base.kind === 'stage') await visit(base.index);
      for (const dep of st.readsFrom ?? []) await visit(dep);
    };
    await visit(target);
    return [...out];
  }

  async cleanup(): Promise<void> {
    for (const p of this.prepared.values()) await p.release().catch(() => undefined);
    this.prepared.clear();
  }

  /** The stages a step reads: each one's key from pass 1, its result only when loaded. */
  private async inputs(step: Step): Promise<StageInputs> {
    const out = new Map<number, { key: string; load(): Promise<StageState> }>();
    for (const i of step.stageInputs) out.set(i, { key: (await this.key(i)).key, load: () => this.run(i) });
    return out;
  }

  private async keyStage(index: number): Promise<KeyedStage> {
    const stage = this.session.plan.stages[index]!;
    let state = withPath(await this.base(stage, true));
    const ops: Op[] = [];
    for (const step of stage.steps) {
      this.checkCancelled();
      const r = await keyStep(this.session, { stage, step, state, stages: await this.inputs(step), prepared: this.prepared });
      // a layer will be made: the mount/xattr helper starts while the other steps are keyed
      if (r.op.layer && !r.op.layer.hit) syscalls.warm();
      ops.push(r.op);
      state = r.state;
    }
    return { ops, state };
  }

  private async runStage(index: number): Promise<StageState> {
    const { ops } = await this.keyed(index);
    const stage = this.session.plan.stages[index]!;
    let state = withPath(await this.base(stage, false));
    for (const [i, op] of ops.entries()) {
      this.checkCancelled();
      const next = nextRunToExecute(ops, op.step.instruction.kind === 'run' ? i + 1 : i);
      if (next) prepareAhead(this.session, next);
      state = await runOp(this.session, { stage, op, state, prepared: this.prepared });
    }
    return state;
  }

  private checkCancelled(): void {
    if (this.session.opts.signal?.aborted) throw new BuildError('CANCELLED', 'build cancelled');
  }

  private async base(stage: Stage, dry: boolean): Promise<StageState> {
    const base = stage.base;
    switch (base.kind) {
      case 'scratch': {
        const platform = stagePlatform(stage, this.session.platform);
        return { img: emptyImage(platform), key: sha256(`scratch ${JSON.stringify(platform)}`), lastCreated: EPOCH, cmdSet: false, records: [] };
      }
      case 'stage': {
        const parent = dry ? await this.key(base.index) : await this.run(base.index);
        return { ...parent, cmdSet: false, readsFrom: [] };
      }
      case 'image':
        return this.imageBase(baseKey(base.ref, stagePlatform(stage, this.session.platform)));
    }
  }

  private imageBase(key: string): StageState {
    const r = this.bases.get(key);
    if (!r) throw new BuildError('BASE_IMAGE_NOT_FOUND', `base image ${key} was not resolved`);
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

/** The first RUN from `from` on that pass 1 found no record for: it will execute. */
function nextRunToExecute(ops: readonly Op[], from: number): Step | undefined {
  return ops.slice(from).find((o) => o.step.instruction.kind === 'run' && o.layer && !o.layer.hit)?.step;
}

/** BuildKit makes sure PATH is always set in the image's Env (appending the default). */
function withPath(state: StageState): StageState {
  const c = state.img.config.config ?? {};
  if (envGet(c.Env, 'PATH') !== undefined) return state;
  const config = { ...c, Env: [...(c.Env ?? []), `PATH=${DEFAULT_PATH}`] };
  return { ...state, img: { ...state.img, config: { ...state.img.config, config } } };
}
