import type { Image } from '@hoist/oci';
import type { CacheRecord } from './cache.js';
import type { ArchiveKind } from './archive.js';
import type { SourceItem } from './sources.js';
import type { OwnedRoot } from './owner.js';

/** What one stage has produced so far. */
export interface StageState {
  img: Image;
  /** Cache key of the root filesystem so far (base + every layer step). */
  key: string;
  /** Time of the newest layer (for metadata history entries). */
  lastCreated: string;
  cmdSet: boolean;
  /**
   * Set in pass 1 when a step (or the base stage) has no cache record: the stage must run.
   * `readsFrom` lists stages that its missing steps read (COPY --from, RUN --mount from=).
   */
  incomplete?: boolean;
  readsFrom?: number[];
  /**
   * The cache records of the layers this stage's steps (and the stages it is built FROM) added,
   * in order: in pass 1 only those found in a cache. `--cache-to mode=min` exports the target's.
   */
  records: CacheRecord[];
}

/**
 * A stage that a step reads (COPY --from, RUN --mount from=), as the solver hands it over: its
 * cache key now, its result only when the step really runs. Step modules get these handles and
 * never call back into the scheduler.
 */
export interface StageHandle {
  key: string;
  load(): Promise<StageState>;
}

/** The stages a step reads, by stage index (every index of `Step.stageInputs`). */
export type StageInputs = ReadonlyMap<number, StageHandle>;

/** The stage a step reads, or a clear internal error when the solver did not provide it. */
export function stageInput(inputs: StageInputs, index: number): StageHandle {
  const h = inputs.get(index);
  if (!h) throw new Error(`internal: stage ${index} is not an input of this step`);
  return h;
}

export interface PreparedCopy {
  inputs: Record<string, unknown>;
  items: SourceItem[];
  /** Local archives ADD must unpack rather than copy. */
  archives: Array<SourceItem & { kind: ArchiveKind }>;
  release(): Promise<void>;
  /**
   * The sources to copy (mounts another stage or image only now, when the step runs), and the
   * roots mounted for them (errors name their paths as the source image sees them).
   */
  load(): Promise<{ items: SourceItem[]; archives: Array<SourceItem & { kind: ArchiveKind }>; roots: string[]; source?: OwnedRoot }>;
}
