import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { constants } from 'node:os';

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
 * Protocol (one request at a time, over pipes): a line `OP hex hex ...`, every argument
 * hex-encoded so that no path or mount option can break the framing; the answer is `0`, or
 * `E<errno>` for a failed call, after any records (`F <hex path>`, `A <hex name> <hex value>`)
 * an xattr dump sends.
 */

/** Syscall numbers (mount, umount2, llistxattr, lgetxattr) per Node architecture name. */
const NUMBERS: Record<string, readonly [number, number, number, number]> = {
  x64: [165, 166, 195, 192],
  arm64: [40, 39, 12, 9],
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

// Why Perl and not a C helper: nothing to compile or ship per architecture, and Perl's `syscall`
// passes strings as NUL-terminated pointers and numbers as integers, all these calls need.
const SCRIPT = String.raw`
use strict; use warnings;
my ($MOUNT, $UMOUNT2, $LLIST, $LGET) = @ARGV;
binmode STDIN; binmode STDOUT;
sub out { my $s = shift; while (length $s) { my $n = syswrite(STDOUT, $s); exit 1 unless defined $n; substr($s, 0, $n) = ''; } }
sub uh { return pack('H*', $_[0] // ''); }
# one buffer each for names and values, reused for every file (a fresh 64 KiB a file made a tree
# walk 3x slower than getfattr's)
my $NAMES = "\0" x 65536;
my $VALUE = "\0" x 65536;
sub value {
  my ($p, $name) = @_;
  my $m = syscall($LGET, $p, $name, $VALUE, 65536);
  return (0, substr($VALUE, 0, $m)) if $m >= 0;
  my $e = $! + 0;
  return ($e) unless $e == 34;
  my $big = "\0" x 16777216;
  $m = syscall($LGET, $p, $name, $big, 16777216);
  return $m >= 0 ? (0, substr($big, 0, $m)) : ($! + 0);
}
sub xattrs {
  my ($p, $acc) = @_;
  my $n = syscall($LLIST, $p, $NAMES, 65536);
  if ($n < 0) { my $e = $! + 0; return ($e == 95 || $e == 61) ? 0 : $e; }
  return 0 if $n == 0;
  my $rec = '';
  for my $name (grep { length } split /\0/, substr($NAMES, 0, $n)) {
    my ($e, $v) = value($p, $name);
    next if $e == 61;
    return $e if $e;
    $rec .= 'A ' . unpack('H*', $name) . ' ' . unpack('H*', $v) . "\n";
  }
  $$acc .= 'F ' . unpack('H*', $p) . "\n" . $rec if length $rec;
  return 0;
}
sub walk {
  my ($p, $acc) = @_;
  my $e = xattrs($p, $acc);
  return $e if $e;
  opendir(my $d, $p) or return $! + 0;
  my @kids = readdir($d);
  closedir($d);
  for my $k (@kids) {
    next if $k eq '.' || $k eq '..';
    my $c = "$p/$k";
    if (!lstat($c)) { next if $! + 0 == 2; return $! + 0; }
    if (-d _) { $e = walk($c, $acc); return $e if $e && $e != 2; }
    else { $e = xattrs($c, $acc); return $e if $e && $e != 2; }
  }
  return 0;
}
while (defined(my $line = <STDIN>)) {
  chomp $line;
  my ($op, @a) = split / /, $line, -1;
  my $r = -1; my $acc = '';
  if ($op eq 'M') {
    my ($cwd, $src, $fs, $flags, $data, $target) = map { uh($_) } @a;
    if (length($cwd) && !chdir($cwd)) { out('E' . ($! + 0) . "\n"); next; }
    my $d = length($data) ? $data : 0;
    $r = syscall($MOUNT, $src, $target, $fs, hex($a[3]) + 0, $d);
    my $e = $! + 0;
    chdir('/');
    out($r == 0 ? "0\n" : "E$e\n");
  } elsif ($op eq 'U') {
    my $target = uh($a[0]);
    $r = syscall($UMOUNT2, $target, hex($a[1]) + 0);
    out($r == 0 ? "0\n" : 'E' . ($! + 0) . "\n");
  } elsif ($op eq 'X') {
    my $top = uh($a[0]);
    my $e = lstat($top) ? (-d _ ? walk($top, \$acc) : xattrs($top, \$acc)) : $! + 0;
    out($acc . ($e ? "E$e\n" : "0\n"));
  } elsif ($op eq 'Q') {
    # in a child: where a seccomp filter on hoist itself has no x32, the call kills its caller
    my $pid = fork();
    if (!defined $pid) { out('E' . ($! + 0) . "\n"); next; }
    if ($pid == 0) { exit(syscall(0x40000000 + 39) >= 0 ? 0 : 1); }
    waitpid($pid, 0);
    out($? == 0 ? "0\n" : "E38\n");
  } else {
    out("E22\n");
  }
}
`;

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

/** The helper is gone or never started: the caller uses the tools instead. */
export class HelperUnavailable extends Error {
  constructor() {
    super('the syscall helper is not running');
  }
}

interface Job {
  line: string;
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
 * The process's syscall helper: started on first use (or by warm()), one request at a time in
 * order. Idle, it does not keep Node running; it exits when its stdin closes, so with Node.
 */
export class SyscallHelper {
  private proc: ChildProcessWithoutNullStreams | undefined;
  private readonly queue: Job[] = [];
  private current: Job | undefined;
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
    const args = ['-e', SCRIPT, ...this.numbers!.map(String)];
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
    const jobs = [this.current, ...this.queue.splice(0)];
    this.current = undefined;
    for (const j of jobs) j?.reject(new HelperUnavailable());
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
      this.lines.push(line);
      if (line === '0' || line.startsWith('E')) this.finish();
    }
  }

  private finish(): void {
    const j = this.current;
    const lines = this.lines;
    this.lines = [];
    this.current = undefined;
    this.count++;
    j?.resolve(lines);
    this.next();
  }

  private next(): void {
    if (this.current) return;
    const j = this.queue.shift();
    if (!j) {
      this.hold(false);
      return;
    }
    const p = this.start();
    if (!p) {
      j.reject(new HelperUnavailable());
      this.next();
      return;
    }
    this.current = j;
    this.hold(true);
    p.stdin.write(j.line);
  }

  private request(op: string, args: string[]): Promise<string[]> {
    if (this.dead) return Promise.reject(new HelperUnavailable());
    return new Promise((resolve, reject) => {
      this.queue.push({ line: `${op} ${args.join(' ')}\n`, resolve, reject });
      this.next();
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

  /** End the process (it exits when its stdin closes). */
  close(): void {
    this.proc?.stdin.end();
    this.proc = undefined;
    this.dead = true;
  }
}

/** The process's helper (one per process, like the tool shells in sys.ts). */
export const syscalls = new SyscallHelper();
