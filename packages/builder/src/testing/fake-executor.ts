import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { ExecOptions, Executor } from '../executor.js';
import type { RunResult } from '../sandbox/runtime.js';
import type { SandboxOptions } from '../sandbox/spec.js';

/** What the fake executor saw, in order: a run starting or ending, with the RUN's command line. */
export interface ExecEvent {
  type: 'start' | 'end';
  /** The command's last argument (`sh -c CMD` gives CMD; exec form its last word). */
  command: string;
}

export interface FakeExecutorOptions {
  /**
   * Hold every run until this many runs have started (to show that runs overlap, from the
   * event order alone). Runs past that number are never held.
   */
  overlap?: number;
}

/**
 * An Executor for fast solver tests: runs nothing, records each call, and writes one file per
 * run into the root filesystem (`/ran/<n>` with the command line) so that a RUN's layer has
 * content. A command that starts with `exit N` fails with that exit code.
 */
export class FakeExecutor implements Executor {
  readonly events: ExecEvent[] = [];
  /** Each run's process (args, env, cwd, user), in the order they started. */
  readonly processes: Array<SandboxOptions['process']> = [];
  /** Each run's mount destinations, in the order they started. */
  readonly mountTargets: string[][] = [];
  private started = 0;
  private waiters: Array<() => void> = [];

  constructor(private readonly o: FakeExecutorOptions = {}) {}

  name(): string {
    return 'fake';
  }

  /** The commands that ran, in the order they started. */
  get commands(): string[] {
    return this.events.filter((e) => e.type === 'start').map((e) => e.command);
  }

  async run(sb: SandboxOptions, _opts: ExecOptions): Promise<RunResult> {
    const command = sb.process.args.at(-1) ?? '';
    const n = ++this.started;
    this.events.push({ type: 'start', command });
    this.processes.push(sb.process);
    this.mountTargets.push((sb.mounts ?? []).map((m) => m.destination));
    await this.held();
    const dir = path.join(sb.rootfs, 'ran');
    await fsp.mkdir(dir, { recursive: true });
    await fsp.writeFile(path.join(dir, String(n)), `${sb.process.args.join(' ')}\n`);
    this.events.push({ type: 'end', command });
    const exit = /^exit (\d+)/.exec(command);
    return { exitCode: exit ? Number(exit[1]) : 0 };
  }

  private async held(): Promise<void> {
    const want = this.o.overlap ?? 0;
    if (this.started >= want) {
      for (const w of this.waiters.splice(0)) w();
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
}
