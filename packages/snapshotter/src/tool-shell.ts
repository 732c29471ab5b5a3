import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

/** `s` as one word of a POSIX shell command line. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The shell failed: `ran` false when the command certainly did not run (the shell never started). */
export class ToolShellGone extends Error {
  constructor(readonly ran: boolean) {
    super(ran ? 'the tool shell exited' : 'the tool shell could not start');
  }
}

/** What a tool run through a ToolShell gave: as sys.ts `run` reports it. */
export interface ToolResult {
  status: number;
  stdout: Buffer;
  stderr: string;
}

interface Refable {
  ref?: () => void;
  unref?: () => void;
}

const MARK = 0x1e; // ASCII record separator: never in mount/umount messages or getfattr's escaped dump

interface Job {
  line: string;
  resolve: (r: ToolResult) => void;
  reject: (e: Error) => void;
}

/**
 * One long-lived `sh` that runs tools one at a time: a layer commit needs `mount`, `umount` and
 * `getfattr`, and a process start from Node forks the whole (large) Node process, blocking its
 * event loop meanwhile; forking from a small shell costs a fraction of that. In its own process
 * group (a Ctrl-C reaches hoist, which then unmounts through it); it exits when its stdin
 * closes, so with the Node process at the latest. Each tool's stdout and stderr come back
 * through the shell's own, each ended by a record separator (the exit status after the first).
 */
export class ToolShell {
  private proc: ChildProcessWithoutNullStreams | undefined;
  private job: Job | undefined;
  private out: Buffer[] = [];
  private err: Buffer[] = [];
  private status: number | undefined;
  private errDone = false;
  private dead = false;
  /** Handed out by a pool and not yet given back. */
  taken = false;

  /** False once the shell could not start or died: callers start tools directly instead. */
  get usable(): boolean {
    return !this.dead;
  }

  private start(): ChildProcessWithoutNullStreams {
    if (this.proc) return this.proc;
    // the C locale: a tool then loads no locale files at start (~1 ms of CPU a layer's mount,
    // unmount and getfattr); its output is parsed the same (getfattr escapes non-ASCII in both)
    const p = spawn('/bin/sh', ['-s'], { stdio: ['pipe', 'pipe', 'pipe'], detached: true, env: { ...process.env, LC_ALL: 'C' } });
    p.stdout.on('data', (d: Buffer) => this.onOut(d));
    p.stderr.on('data', (d: Buffer) => this.onErr(d));
    p.stdin.on('error', () => undefined);
    p.on('error', () => this.fail(false));
    p.on('close', () => this.fail(true));
    // an idle shell does not keep Node running (a command in flight does: see hold)
    p.unref();
    for (const s of [p.stdin, p.stdout, p.stderr] as unknown as Refable[]) s.unref?.();
    this.proc = p;
    return p;
  }

  /** Keep the event loop alive while a command runs (its output is awaited), not otherwise. */
  private hold(on: boolean): void {
    const out = this.proc?.stdout as unknown as Refable | undefined;
    if (on) out?.ref?.();
    else out?.unref?.();
  }

  private fail(ran: boolean): void {
    this.dead = true;
    this.proc = undefined;
    const j = this.job;
    this.job = undefined;
    j?.reject(new ToolShellGone(ran));
  }

  /** Run `cmd args` (in `cwd`), stdin empty. Rejects (ToolShellGone) only when the shell itself fails. */
  run(cmd: string, args: readonly string[], cwd?: string): Promise<ToolResult> {
    if (this.job || this.dead) return Promise.reject(new ToolShellGone(false));
    const argv = [cmd, ...args].map(shQuote).join(' ');
    const inner = cwd ? `cd ${shQuote(cwd)} && exec ${argv}` : `exec ${argv}`;
    const line = `(${inner}) </dev/null; printf '\\036%d\\n' "$?"; printf '\\036' >&2\n`;
    return new Promise<ToolResult>((resolve, reject) => {
      this.job = { line, resolve, reject };
      this.out = [];
      this.err = [];
      this.status = undefined;
      this.errDone = false;
      const p = this.start();
      this.hold(true);
      p.stdin.write(line);
    });
  }

  private onOut(d: Buffer): void {
    if (this.status !== undefined) return;
    this.out.push(d);
    const all = Buffer.concat(this.out);
    const at = all.indexOf(MARK);
    if (at < 0) {
      this.out = [all];
      return;
    }
    const nl = all.indexOf(0x0a, at);
    if (nl < 0) {
      this.out = [all];
      return;
    }
    this.status = Number(all.toString('latin1', at + 1, nl));
    this.out = [all.subarray(0, at)];
    this.settle();
  }

  private onErr(d: Buffer): void {
    if (this.errDone) return;
    const at = d.indexOf(MARK);
    this.err.push(at < 0 ? d : d.subarray(0, at));
    if (at >= 0) {
      this.errDone = true;
      this.settle();
    }
  }

  private settle(): void {
    if (this.status === undefined || !this.errDone || !this.job) return;
    const j = this.job;
    this.job = undefined;
    this.hold(false);
    j.resolve({ status: this.status, stdout: Buffer.concat(this.out), stderr: Buffer.concat(this.err).toString('utf8').trim() });
  }

  /** End the shell (it exits once its stdin closes). */
  close(): void {
    this.proc?.stdin.end();
    this.proc = undefined;
    this.dead = true;
  }
}

/**
 * A few ToolShells for the process: a command takes an idle one, or starts another up to `max`
 * (parallel stages commit side by side), else waits for one. `run` resolves undefined when no
 * shell can be had (none starts here): the caller then starts the tool directly.
 */
export class ToolShellPool {
  private readonly shells: ToolShell[] = [];
  private readonly waiting: Array<() => void> = [];
  /** Commands run through the pool (for tests). */
  count = 0;

  constructor(private readonly max = 2) {}

  private async take(): Promise<ToolShell | undefined> {
    for (;;) {
      for (let i = this.shells.length - 1; i >= 0; i--) if (!this.shells[i]!.usable) this.shells.splice(i, 1);
      const idle = this.shells.find((s) => !s.taken);
      if (idle) {
        idle.taken = true;
        return idle;
      }
      if (this.shells.length < this.max) {
        const s = new ToolShell();
        s.taken = true;
        this.shells.push(s);
        return s;
      }
      await new Promise<void>((r) => this.waiting.push(r));
    }
  }

  async run(cmd: string, args: readonly string[], cwd?: string): Promise<ToolResult | undefined> {
    const s = await this.take();
    try {
      const r = await s!.run(cmd, args, cwd);
      this.count++;
      return r;
    } catch (e) {
      if (e instanceof ToolShellGone && !e.ran) return undefined;
      throw e;
    } finally {
      s!.taken = false;
      this.waiting.shift()?.();
    }
  }

  close(): void {
    for (const s of this.shells.splice(0)) s.close();
  }
}
