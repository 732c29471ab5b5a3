/**
 * The contract between the parser/planner and the builder. Plain, `kind`-tagged data.
 * Values here are already expanded (variables substituted) wherever Docker expands them.
 */

export interface SourceRange {
  /** Dockerfile path as given to `parse` (for messages). */
  file: string;
  /** 1-based, inclusive. */
  startLine: number;
  endLine: number;
}

/** Shell form keeps the command text (run by the stage's SHELL); exec form is a JSON array. */
export type CommandForm = { form: 'shell'; command: string } | { form: 'exec'; args: string[] };

export interface Heredoc {
  /** Terminator name with quotes removed (for COPY/ADD: the file name created in `dest`). */
  name: string;
  /**
   * Body text with its newlines (leading tabs stripped for `<<-`). COPY/ADD bodies are already
   * expanded unless the name was quoted; RUN bodies are left as written, for the shell.
   */
  content: string;
  /** Whether variables in the body are expanded (false when the terminator was quoted). */
  expand: boolean;
  /** Leading digits before `<<` (file descriptor), if any. */
  fd?: number;
  chomp: boolean;
}

export type RunMount =
  | { type: 'bind'; target: string; source?: string; from?: string; readwrite: boolean }
  | {
      type: 'cache';
      target: string;
      id?: string;
      source?: string;
      from?: string;
      sharing: 'shared' | 'private' | 'locked';
      readonly: boolean;
      uid?: number;
      gid?: number;
      mode?: number;
    }
  | { type: 'tmpfs'; target: string; size?: number }
  | { type: 'secret'; id: string; target?: string; env?: string; required: boolean; mode?: number; uid?: number; gid?: number }
  | { type: 'ssh'; id: string; target?: string; required: boolean; mode?: number; uid?: number; gid?: number };

export interface RunInstruction {
  kind: 'run';
  command: CommandForm;
  mounts: RunMount[];
  network: 'default' | 'none' | 'host';
  security: 'sandbox' | 'insecure';
  heredocs: Heredoc[];
}

export interface CopyInstruction {
  kind: 'copy';
  /** ADD rather than COPY. */
  add: boolean;
  /** Path/URL sources (heredoc sources are not listed here but in `heredocs`). */
  sources: string[];
  dest: string;
  /** `--from` as written (expanded): a stage name, a stage index, or an image reference. */
  from?: string;
  /** When `from` names a stage of this Dockerfile: its index. */
  fromStage?: number;
  chown?: string;
  /** `--chmod` as written: octal (`755`) or symbolic (`u+x,g-w`). */
  chmod?: string;
  link: boolean;
  parents: boolean;
  exclude: string[];
  checksum?: string;
  keepGitDir: boolean;
  unpack?: boolean;
  heredocs: Heredoc[];
}

export interface HealthcheckInstruction {
  kind: 'healthcheck';
  /** `['NONE']` disables; otherwise `['CMD', ...args]` or `['CMD-SHELL', command]`. */
  test: string[];
  /** Durations in nanoseconds, as the image config stores them; absent when not given. */
  interval?: number;
  timeout?: number;
  startPeriod?: number;
  startInterval?: number;
  retries?: number;
}

export type Instruction =
  | RunInstruction
  | CopyInstruction
  | HealthcheckInstruction
  | { kind: 'env'; pairs: Array<[string, string]> }
  | { kind: 'label'; pairs: Array<[string, string]> }
  | { kind: 'workdir'; path: string }
  | { kind: 'user'; user: string }
  | { kind: 'cmd'; command: CommandForm }
  | { kind: 'entrypoint'; command: CommandForm }
  | { kind: 'expose'; ports: string[] }
  | { kind: 'volume'; paths: string[] }
  | { kind: 'stopsignal'; signal: string }
  | { kind: 'shell'; shell: string[] }
  | { kind: 'onbuild'; expression: string }
  | { kind: 'maintainer'; name: string }
  | { kind: 'arg'; args: Array<{ name: string; value?: string }> };

export type InstructionKind = Instruction['kind'];

export interface Step {
  /** Stable within a plan: `<stageIndex>.<stepIndex>`. */
  id: string;
  kind: InstructionKind;
  instruction: Instruction;
  /** Upper-case keyword as Docker prints it (`RUN`, `COPY`, ...). */
  keyword: string;
  /** The instruction's source text (logical line, without heredoc bodies), for history and messages. */
  original: string;
  line: number;
  range: SourceRange;
  /**
   * Build args in scope at this step that a RUN sees in its environment (declared with ARG in
   * the stage, with their values, not shadowed by ENV). Docker records them in `created_by`.
   */
  buildArgs: Array<[string, string]>;
  /**
   * Every ARG declared in the stage so far, as BuildKit prints them in a RUN's `created_by`
   * (`|N K=V ... <cmd>`): the current env value when set, else the ARG's value, else empty.
   */
  historyArgs: Array<[string, string]>;
  /** Indexes of other stages this step reads from (COPY --from, RUN --mount from=). */
  stageInputs: number[];
  /** Image references this step reads from (COPY --from=image, RUN --mount from=image). */
  imageInputs: string[];
  /** The step is an ONBUILD trigger inherited from the base (its `line` is the FROM line). */
  fromOnBuild?: boolean;
}

export type StageBase =
  | { kind: 'scratch' }
  | { kind: 'image'; ref: string }
  | { kind: 'stage'; index: number; name?: string };

export interface Stage {
  /** As written in `AS name` (lower-cased for matching; `name` keeps what was written). */
  name?: string;
  index: number;
  base: StageBase;
  /** `--platform` expanded, if given. */
  platform?: string;
  /** Names (or indexes as strings, for unnamed stages) of stages this one depends on. */
  dependsOn: string[];
  /** Indexes of the stages this one depends on. */
  dependsOnIndex: number[];
  steps: Step[];
  range: SourceRange;
}

export interface ParseWarning {
  code: string;
  message: string;
  line?: number;
}

export interface Plan {
  file: string;
  stages: Stage[];
  /** Index of the stage that produces the image (the `--target`, else the last). */
  target: number;
  warnings: ParseWarning[];
  /** Parser directives found (`syntax`, `escape`, `check`). */
  directives: Record<string, string>;
  /**
   * Predefined proxy build args that were given (`HTTP_PROXY`, `no_proxy`, ...): every RUN gets
   * them in its environment without an ARG, and they stay out of the history.
   */
  proxyArgs: Array<[string, string]>;
  /** Stage names (lower-cased) that a named build context overrides; absent when none. */
  namedContexts?: string[];
}

/** What the builder knows of a base image before planning: env for expansion, ONBUILD triggers. */
export interface BaseImageInfo {
  env?: string[];
  onBuild?: string[];
  workingDir?: string;
  user?: string;
  shell?: string[];
}

export interface PlanOptions {
  buildArgs?: Record<string, string>;
  target?: string;
  /** Target platform, `os/arch[/variant]`, for the automatic platform args. Defaults to linux/amd64-like host. */
  platform?: string;
  buildPlatform?: string;
  /** Base image info by the base reference string as it appears (expanded) in FROM. */
  baseImages?: Record<string, BaseImageInfo>;
  /**
   * Names of named build contexts (`--build-context NAME=…`): a stage of that name is
   * overridden (`FROM NAME`, `COPY --from=NAME`, `RUN --mount from=NAME` mean the context).
   */
  namedContexts?: string[];
}

export interface Outline {
  /**
   * Expanded base image references of FROM lines that are not stages or scratch, by stage index
   * (all stages; resolve only those in `stagesNeeded`).
   */
  baseRefs: Array<{ stage: number; ref: string; platform?: string }>;
  /** Image refs used by COPY --from / RUN --mount from= that are not stages (in the stages the target needs). */
  otherImageRefs: string[];
  stageNames: Array<string | undefined>;
  /** The target stage index and the stages it needs (only their base refs must be resolved). */
  target: number;
  stagesNeeded: number[];
}
