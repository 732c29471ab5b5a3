/** Typed build errors with stable codes; messages name the stage, step and Dockerfile line. */
export type BuildErrorCode =
  | 'STEP_FAILED'
  | 'BASE_IMAGE_NOT_FOUND'
  | 'COPY_SOURCE_NOT_FOUND'
  | 'COPY_OUTSIDE_CONTEXT'
  | 'RUNTIME_UNAVAILABLE'
  | 'RUNTIME_FAILED'
  | 'USER_NOT_FOUND'
  | 'SECRET_NOT_FOUND'
  | 'UNSUPPORTED'
  | 'ENTITLEMENT_REQUIRED'
  | 'NETWORK_UNAVAILABLE'
  | 'INVALID_SECURITY_OPT'
  /** --memory/--cpus/--pids-limit where this process cannot manage cgroups (rootless). */
  | 'LIMITS_UNAVAILABLE'
  | 'LINT_VIOLATION'
  /** A target platform this host cannot run (no emulator, unknown architecture). */
  | 'PLATFORM_UNSUPPORTED'
  /** What the no-privilege sandbox (proot) cannot do: its own network, limits (named with the fix). */
  | 'ISOLATION_UNSUPPORTED'
  | 'CANCELLED';

export interface StepLocation {
  stage: string;
  step: string;
  file: string;
  line: number;
  instruction: string;
}

export class BuildError extends Error {
  readonly code: BuildErrorCode;
  readonly location?: StepLocation;
  /** Last lines of the failing step's output, when there was output. */
  readonly outputTail?: string[];
  readonly exitCode?: number;
  constructor(
    code: BuildErrorCode,
    message: string,
    opts: { cause?: unknown; location?: StepLocation; outputTail?: string[]; exitCode?: number } = {},
  ) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'BuildError';
    this.code = code;
    if (opts.location) this.location = opts.location;
    if (opts.outputTail) this.outputTail = opts.outputTail;
    if (opts.exitCode !== undefined) this.exitCode = opts.exitCode;
  }
}
