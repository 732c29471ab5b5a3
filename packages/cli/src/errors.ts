/** A usage error: wrong flags or values. Exit code 2. */
export class UsageError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A failure already reported to the user; carries only the exit code. */
export class ExitError extends Error {
  constructor(readonly exitCode: number, message = '') {
    super(message);
    this.name = 'ExitError';
  }
}

/** Not root, and the user namespace a rootless build needs cannot be made here. Exit code 1. */
export class RootlessError extends Error {
  readonly code = 'ROOTLESS_UNAVAILABLE';
  /** The kernel (or a seccomp filter) refused the user namespace itself: --isolation auto falls back to proot. */
  readonly refused: boolean;
  constructor(message: string, o: { refused?: boolean } = {}) {
    super(message);
    this.refused = o.refused ?? false;
    this.name = 'RootlessError';
  }
}

/** `--load` failed: the daemon refused the archive or could not be reached. Exit code 1. */
export class DockerLoadError extends Error {
  readonly code = 'DOCKER_LOAD_FAILED';
  readonly hint = 'the image is built and in the store; retry with `hoist save IMAGE | docker load`, or build with -o type=docker,dest=image.tar';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DockerLoadError';
  }
}
