import * as path from 'node:path';
import type { Ownership } from '@hoist/snapshotter';
import { detectRuntime, detectRuntimeAsync, runInSandbox, type RunResult, type RuntimeInfo } from './sandbox/runtime.js';
import { warmCgroupAttach } from './sandbox/cgroups.js';
import type { SandboxOptions } from './sandbox/spec.js';

/** Per run: where the bundle goes, where output goes, how to cancel. */
export interface ExecOptions {
  /** A private directory for the bundle (the sandbox session's). */
  bundleParent: string;
  stdout?: (chunk: Buffer) => void;
  stderr?: (chunk: Buffer) => void;
  signal?: AbortSignal;
  /**
   * No privileges: the rootfs's ownership record (see Ownership). An executor that fakes ids
   * (proot) records there the owners the process gives files; others ignore it.
   */
  owners?: Ownership;
  /** Something the build should know (e.g. what cannot be recorded): a progress warning. */
  warn?: (message: string) => void;
  /**
   * Takes clean-up that need not delay the result (removing the bundle): the caller waits for it
   * before it ends. Without it, run waits itself.
   */
  defer?: (work: Promise<unknown>) => void;
}

/**
 * Runs one sandboxed process of a RUN step on a prepared root filesystem: the seam between the
 * solver and the OCI runtime. The fake under `testing/` records calls and writes files instead.
 */
export interface Executor {
  /** The runtime's name, for error messages (detected on first use). */
  name(): string;
  /** Which isolation mode runs and why, for the progress output (default: root or rootless runc). */
  describe?(): string;
  /** Find the runtime without blocking (before a RUN's root is mounted, while it is). */
  prepare?(): Promise<void>;
  run(sb: SandboxOptions, opts: ExecOptions): Promise<RunResult>;
}

/** The OCI runtime (runc, crun), detected only when a RUN step first executes. */
export class RuntimeExecutor implements Executor {
  private rt: RuntimeInfo | undefined;
  private detecting: Promise<void> | undefined;

  constructor(private readonly o: { root: string; preferred?: string }) {}

  prepare(): Promise<void> {
    // a RUN will start soon: from here until it does, the cgroup lock is kept warm (runInSandbox renews it)
    warmCgroupAttach();
    if (this.rt) return Promise.resolve();
    const memo = { file: path.join(this.o.root, 'runtime', 'checked'), tmpDir: path.join(this.o.root, 'tmp') };
    this.detecting ??= detectRuntimeAsync(this.o.preferred, memo).then((rt) => {
      this.rt ??= rt;
    });
    return this.detecting;
  }

  private runtime(): RuntimeInfo {
    this.rt ??= detectRuntime(this.o.preferred);
    return this.rt;
  }

  name(): string {
    return this.runtime().name;
  }

  run(sb: SandboxOptions, opts: ExecOptions): Promise<RunResult> {
    const rt = this.runtime();
    return runInSandbox(rt, sb, { ...opts, stateDir: path.join(this.o.root, 'runtime', rt.name) });
  }
}
