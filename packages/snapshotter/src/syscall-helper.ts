import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { constants } from 'node:os';
import { HELPER_SCRIPT } from './helper-script.js';

/**
 * mount(2), umount2(2) and the xattr reads of a layer commit, made by ONE long-lived Perl
 * process through Perl's `syscall`: a commit otherwise starts `mount`, `umount` and `getfattr`
 * (a fork of the tool shell plus an exec and the tool's own start-up each, ~3-5 ms apiece on the
 * one-file-changed path, where the whole step takes tens of ms). Node has no API for these
 * calls and the project builds no native addon; perl-base is Essential on Debian, so it is on
 * every machine hoist runs on. Where Perl or the architecture's syscall numbers are missing, the
 * helper reports itself unusable and callers use the tools (see overlay.ts, sys.ts). It also
 * answers whether the kernel runs x32 system calls (x32Abi, for the RUN's seccomp filter).
 *
 * It starts the processes of a RUN's network (netns) and is the sandboxes' watchdog
 * (onOrphaned), for the same reason: each process Node starts is a fork of Node itself, ~1-7 ms
 * of the main thread apiece at hoist's size, while this small process forks in well under one.
 *
 * Protocol (over pipes; requests written as they come, answered in order): a line `OP hex hex
 * ...`, every argument hex-encoded so that no path or mount option can break the framing; the
 * answer is `0`, or `E<errno>` for a failed call, after any records (`F <hex path>`, `A <hex
 * name> <hex value>` an xattr dump sends, `P <id>` a network start sends). A network comes up in
 * the background; its outcome, `Z <id> P <holder pid>` or `Z <id> R <which> <t|x> <code> <hex
 * stderr>`, arrives as a line of its own between answers.
 */

/** Syscall numbers (mount, umount2, llistxattr, lgetxattr, dup3, unshare) per Node architecture name. */
const NUMBERS: Record<string, readonly [number, number, number, number, number, number]> = {
  x64: [165, 166, 195, 192, 292, 272],
  arm64: [40, 39, 12, 9, 24, 97],
};

/** errno values the callers look at (Linux, same on x86_64 and arm64). */
export const EINVAL = 22;
export const ENOENT = 2;
export const EBUSY = 16;
export const ENOSYS = 38;
export const MNT_DETACH = 2;
export const MS_NOSUID = 2;
export const MS_NODEV = 4;
export const MS_NOEXEC = 8;

/** `ENOENT (2)` for 2. */
export function errnoName(errno: number): string {
  const name = Object.entries(constants.errno).find(([, v]) => v === errno)?.[0];
  return name ? `${name} (${errno})` : `errno ${errno}`;
}

/** A failed call: `errno` as the kernel gave it. */
export class SyscallError extends Error {
  constructor(readonly op: string, readonly errno: number) {
    super(`${op} failed: ${errnoName(errno)}`);
  }
}

/** A network from netns() that did not come up: which process, whether it ran out of time or exited (and how), its stderr. */
export class NetnsFailure extends Error {
  constructor(readonly which: 'holder' | 'slirp', readonly kind: 'timeout' | 'exit', readonly code: number, readonly stderr: string) {
    super(`the network's ${which} ${kind === 'timeout' ? 'did not start in time' : `exited with code ${code}`}`);
  }
}

/** The helper is gone or never started: the caller uses the tools instead. */
export class HelperUnavailable extends Error {
  constructor() {
    super('the syscall helper is not running');
  }
}

interface Job {
  resolve: (lines: string[]) => void;
  reject: (e: Error) => void;
}

interface Refable {
  ref?: () => void;
  unref?: () => void;
}

/** Path -> xattr name -> value. */
export type XattrMap = Map<string, Map<string, Buffer>>;

export interface MountRequest {
  /** Directory relative paths in `source`/`data` are relative to (the call runs there). */
  cwd?: string;
  source: string;
  fstype: string;
  flags?: number;
  data?: string;
  target: string;
}

const hex = (s: string): string => Buffer.from(s, 'utf8').toString('hex');

/**
 * The process's syscall helper: started on first use (or by warm()), serving its requests in
 * order. Idle, it does not keep Node running; it exits when its stdin closes, so with Node.
 */
export class SyscallHelper {
  private proc: ChildProcessWithoutNullStreams | undefined;
  /** Requests written and not answered yet, oldest first (answers come in order). */
  private readonly inflight: Job[] = [];
  /** Networks started (op N) whose report has not come yet, and reports no one waits for yet. */
  private readonly waiters = new Map<string, { resolve: (report: string) => void; reject: (e: Error) => void }>();
  private readonly reports = new Map<string, string>();
  private buf = '';
  private lines: string[] = [];
  private dead: boolean;
  /** Calls answered (for tests). */
  count = 0;

  private readonly numbers: readonly number[] | undefined;
  private readonly perl: string;
  private readonly arch: string;
  private x32: Promise<boolean> | undefined;

  /** `arch` (default: this process's) picks the syscall numbers; `perl` the interpreter. */
  constructor(opts: { arch?: string; perl?: string } = {}) {
    this.arch = opts.arch ?? process.arch;
    this.numbers = NUMBERS[this.arch];
    this.perl = opts.perl ?? 'perl';
    this.dead = this.numbers === undefined;
  }

  /** False where the helper cannot run (no syscall numbers for this architecture, no Perl, it died). */
  get usable(): boolean {
    return !this.dead;
  }

  /** Start the process ahead of the first call (its start-up then overlaps other work). */
  warm(): void {
    if (!this.dead) this.start();
  }

  private start(): ChildProcessWithoutNullStreams | undefined {
    if (this.proc || this.dead) return this.proc;
    const args = ['-e', HELPER_SCRIPT, ...this.numbers!.map(String)];
    const p = spawn(this.perl, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' } });
    p.stdout.setEncoding('latin1');
    p.stdout.on('data', (d: string) => this.onData(d));
    p.stderr.on('data', () => undefined);
    p.stdin.on('error', () => undefined);
    p.on('error', () => this.fail());
    p.on('close', () => this.fail());
    p.unref();
    for (const s of [p.stdin, p.stdout, p.stderr] as unknown as Refable[]) s.unref?.();
    this.proc = p;
    return p;
  }

  private fail(): void {
    this.dead = true;
    this.proc = undefined;
    const jobs = [...this.inflight.splice(0), ...this.waiters.values()];
    this.waiters.clear();
    for (const j of jobs) j.reject(new HelperUnavailable());
  }

  private hold(on: boolean): void {
    const out = this.proc?.stdout as unknown as Refable | undefined;
    if (on) out?.ref?.();
    else out?.unref?.();
  }

  private onData(d: string): void {
    const parts = (this.buf + d).split('\n');
    this.buf = parts.pop()!;
    for (const line of parts) {
      if (line.startsWith('Z ')) {
        this.report(line);
        continue;
      }
      this.lines.push(line);
      if (line === '0' || line.startsWith('E')) this.finish();
    }
  }

  private finish(): void {
    const j = this.inflight.shift();
    const lines = this.lines;
    this.lines = [];
    this.count++;
    j?.resolve(lines);
    this.settle();
  }

  /** Node is kept running while an answer or a network's report is awaited, not otherwise. */
  private settle(): void {
    this.hold(this.inflight.length > 0 || this.waiters.size > 0);
  }

  /**
   * Write the request at once, whatever is in flight: the helper answers in order. (One at a
   * time, each request waited for the answer before it to reach Node's event loop, which during
   * a build is seldom idle: the first mount waited out several such turns, issue 16.)
   */
  private request(op: string, args: string[]): Promise<string[]> {
    const p = this.dead ? undefined : this.start();
    if (!p) return Promise.reject(new HelperUnavailable());
    return new Promise((resolve, reject) => {
      this.inflight.push({ resolve, reject });
      this.hold(true);
      p.stdin.write(`${op} ${args.join(' ')}\n`);
    });
  }

  private static check(op: string, lines: string[]): string[] {
    const last = lines.at(-1)!;
    if (last !== '0') throw new SyscallError(op, Number(last.slice(1)));
    return lines.slice(0, -1);
  }

  /** mount(2). Rejects SyscallError (errno) or HelperUnavailable. */
  async mount(r: MountRequest): Promise<void> {
    const args = [hex(r.cwd ?? ''), hex(r.source), hex(r.fstype), (r.flags ?? 0).toString(16), hex(r.data ?? ''), hex(r.target)];
    SyscallHelper.check('mount', await this.request('M', args));
  }

  /** umount2(2) with `flags` (e.g. MNT_DETACH). */
  async umount(target: string, flags = 0): Promise<void> {
    SyscallHelper.check('umount', await this.request('U', [hex(target), flags.toString(16)]));
  }

  /**
   * Every xattr at or below `dir`, symlinks not followed, keyed by path (`dir` joined with the
   * names below it, as `getfattr -R --absolute-names` names them). Files without xattrs are left out.
   */
  async xattrsTree(dir: string): Promise<XattrMap> {
    const lines = SyscallHelper.check('xattrs', await this.request('X', [hex(dir)]));
    const map: XattrMap = new Map();
    let cur: Map<string, Buffer> | undefined;
    for (const l of lines) {
      const f = l.split(' ');
      if (f[0] === 'F') map.set(Buffer.from(f[1]!, 'hex').toString('utf8'), (cur = new Map()));
      else if (f[0] === 'A' && cur) cur.set(Buffer.from(f[1]!, 'hex').toString('utf8'), Buffer.from(f[2] ?? '', 'hex'));
    }
    return map;
  }

  /**
   * Whether this x86_64 kernel runs x32 ABI system calls for us (an x32 getpid, made in a child
   * of the helper, answers): most kernels build x32 in but leave it off (`syscall.x32=n`), and a
   * seccomp filter hoist itself runs under may kill x32 callers; either way a RUN cannot make
   * them and a filter for x32 is wasted work for the runtime. False on other architectures;
   * true where the helper cannot tell (the filter then keeps x32, as Docker's does).
   */
  x32Abi(): Promise<boolean> {
    if (this.arch !== 'x64') return Promise.resolve(false);
    this.x32 ??= this.request('Q', [])
      .then((l) => SyscallHelper.check('x32 getpid', l))
      .then(
        () => true,
        (e: unknown) => !(e instanceof SyscallError && e.errno === ENOSYS),
      );
    return this.x32;
  }

  /**
   * Arm the watchdog: should this process die (the helper's stdin ends) before disarm(), the
   * helper execs `argv`, its fds on /dev/null and INT, TERM, HUP and QUIT ignored.
   */
  async onOrphaned(argv: string[]): Promise<void> {
    SyscallHelper.check('watchdog', await this.request('W', argv.map(hex)));
  }

  /** Disarm the watchdog. */
  async disarm(): Promise<void> {
    SyscallHelper.check('watchdog', await this.request('W', []));
  }

  /**
   * A network namespace with lo up, held by a child of the helper (`pid`), with `slirp` attached
   * (`%PID%` in it stands for the holder's pid; it writes `1` to fd 3 when ready and exits when
   * fd 4 ends). Both go when closeNetns(id) is called or this process dies. Rejects NetnsFailure
   * when the namespace cannot be made or slirp does not come up within `timeoutSec`.
   */
  async netns(o: { slirp: string[]; timeoutSec: number }): Promise<{ id: string; pid: number }> {
    const lines = SyscallHelper.check('netns', await this.request('N', [String(o.timeoutSec), ...o.slirp.map(hex)]));
    const id = lines.find((l) => l.startsWith('P '))!.split(' ')[1]!;
    const report = await this.netReport(id);
    const f = report.split(' ');
    if (f[0] === 'P') return { id, pid: Number(f[1]) };
    this.closeNetns(id).catch(() => undefined);
    if (f[0] === 'R') throw new NetnsFailure(f[1] === '1' ? 'slirp' : 'holder', f[2] === 't' ? 'timeout' : 'exit', Number(f[3]), Buffer.from(f[4] ?? '', 'hex').toString('utf8'));
    throw new SyscallError('netns', Number(report.slice(1)) || 5);
  }

  /** The report (`P <pid>`, `R ...` or `E<errno>`) of network `id`, which may have come already. */
  private netReport(id: string): Promise<string> {
    const early = this.reports.get(id);
    if (early !== undefined) {
      this.reports.delete(id);
      return Promise.resolve(early);
    }
    return new Promise((resolve, reject) => {
      this.waiters.set(id, { resolve, reject });
      this.hold(true);
    });
  }

  /** A `Z <id> <report>` line: comes between answers, whenever a network is up or has failed. */
  private report(line: string): void {
    const [, id, ...rest] = line.split(' ');
    const w = this.waiters.get(id!);
    if (!w) {
      this.reports.set(id!, rest.join(' '));
      return;
    }
    this.waiters.delete(id!);
    w.resolve(rest.join(' '));
    this.settle();
  }

  /**
   * Keep the kernel's cgroup attach lock warm for the next ~100 ms (see op K in the script): a
   * child of the helper writes its own pid into `procsFile`, the `cgroup.procs` of the cgroup it
   * is in (the helper's, so this process's), every 2 ms. A call while it runs extends it.
   */
  async warmCgroupLock(procsFile: string): Promise<void> {
    SyscallHelper.check('cgroup warm', await this.request('K', [hex(procsFile)]));
  }

  /** End a network from netns(): its holder and slirp are told to go (they exit on their own, at once). */
  async closeNetns(id: string): Promise<void> {
    SyscallHelper.check('netns close', await this.request('n', [id]));
  }

  /** End the process (it exits when its stdin closes), disarmed first: a close is no death. */
  close(): void {
    this.proc?.stdin.end('W\n');
    this.proc = undefined;
    this.dead = true;
  }
}

/** The process's helper (one per process, like the tool shells in sys.ts). */
export const syscalls = new SyscallHelper();
