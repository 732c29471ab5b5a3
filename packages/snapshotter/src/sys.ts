import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { SnapshotError } from './errors.js';
import { ToolShellPool, shQuote } from './tool-shell.js';
import { HelperUnavailable, SyscallError, errnoName, syscalls, type XattrMap } from './syscall-helper.js';

export { shQuote };

/**
 * System calls Node has no API for (mknod, xattrs, mount) go through small standard tools:
 * coreutils `mknod`/`mkfifo`, attr's `getfattr`/`setfattr`, util-linux `mount`/`umount`.
 * No native addons.
 */

export interface RunResult {
  stdout: Buffer;
  stderr: string;
}

/** Run a command to completion; reject with HELPER_FAILED (or `code`) on a non-zero exit. */
export function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; input?: Buffer | string; allowFail?: boolean; code?: 'MOUNT_FAILED' | 'HELPER_FAILED'; signal?: AbortSignal } = {},
): Promise<RunResult & { status: number }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'], ...(opts.signal ? { signal: opts.signal } : {}) });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => err.push(d));
    p.on('error', (e) => reject(
        e.name === 'AbortError' ? new SnapshotError('ABORTED', `${cmd} aborted`, { cause: e }) :new SnapshotError(opts.code ?? 'HELPER_FAILED', `cannot run ${cmd}: ${e.message}`, { cause: e })));
    p.on('close', (status) => {
      const r = { stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8').trim(), status: status ?? -1 };
      if (r.status !== 0 && !opts.allowFail) {
        reject(new SnapshotError(opts.code ?? 'HELPER_FAILED', `${cmd} ${args.join(' ')} failed (exit ${r.status}): ${r.stderr}`));
      } else resolve(r);
    });
    p.stdin.on('error', () => undefined);
    p.stdin.end(opts.input ?? '');
  });
}

/** The process's tool shells (see ToolShell). */
export const toolShells = new ToolShellPool();

/**
 * `run` for the tools a layer commit needs (mount, umount, getfattr): through a ToolShell, a
 * fork of a small shell instead of the Node process; started directly where no shell can be had.
 */
export async function runTool(
  cmd: string,
  args: string[],
  opts: { cwd?: string; allowFail?: boolean; code?: 'MOUNT_FAILED' | 'HELPER_FAILED' } = {},
): Promise<RunResult & { status: number }> {
  let r;
  try {
    r = await toolShells.run(cmd, args, opts.cwd);
  } catch (e) {
    throw new SnapshotError(opts.code ?? 'HELPER_FAILED', `${cmd} ${args.join(' ')}: ${(e as Error).message}`, { cause: e });
  }
  if (!r) return run(cmd, args, opts);
  if (r.status !== 0 && !opts.allowFail) throw new SnapshotError(opts.code ?? 'HELPER_FAILED', `${cmd} ${args.join(' ')} failed (exit ${r.status}): ${r.stderr}`);
  return r;
}


/**
 * A long-lived `sh` reading commands from stdin, so that creating many device nodes or setting
 * many xattrs costs a fork in sh rather than a process spawn from Node each. Commands run one at
 * a time, in order; each resolves when its command has finished.
 */
export class ShellHelper {
  private proc: ChildProcessWithoutNullStreams | undefined;
  private buf = '';
  private readonly waiting: Array<{ resolve: () => void; reject: (e: Error) => void; what: string }> = [];
  private chain: Promise<void> = Promise.resolve();

  private start(): ChildProcessWithoutNullStreams {
    if (this.proc) return this.proc;
    const p = spawn('sh', ['-s'], { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' } });
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (d: string) => {
      this.buf += d;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        const w = this.waiting.shift();
        if (!w) continue;
        if (line === 'OK') w.resolve();
        else w.reject(new SnapshotError('HELPER_FAILED', `${w.what}: ${line.replace(/^ERR /, '')}`));
      }
    });
    p.stderr.on('data', () => undefined);
    p.stdin.on('error', () => undefined);
    p.on('close', () => {
      for (const w of this.waiting.splice(0)) w.reject(new SnapshotError('HELPER_FAILED', `${w.what}: helper shell exited`));
      this.proc = undefined;
    });
    this.proc = p;
    return p;
  }

  /** Run `argv` (quoted for sh) and wait for it. */
  exec(argv: string[]): Promise<void> {
    const what = argv.slice(0, 2).join(' ');
    const line = `if __o=$(${argv.map(shQuote).join(' ')} 2>&1); then echo OK; else echo "ERR $(printf '%s' "$__o" | tr '\\n' ' ')"; fi\n`;
    const p = new Promise<void>((resolve, reject) => {
      this.chain = this.chain.then(() => {
        const proc = this.start();
        this.waiting.push({ resolve, reject, what });
        proc.stdin.write(line);
      });
    });
    return p;
  }

  async close(): Promise<void> {
    const p = this.proc;
    if (!p) return;
    await new Promise<void>((resolve) => {
      p.once('close', () => resolve());
      p.stdin.end();
    });
  }
}

export type { XattrMap };

/** Names of `getfattr` dumps escape bytes as `\ooo`. */
function unescapeName(s: string): string {
  if (!s.includes('\\')) return s;
  const bytes: number[] = [];
  const raw = Buffer.from(s, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0x5c && i + 3 < raw.length + 0 && /^[0-7]{3}$/.test(raw.toString('latin1', i + 1, i + 4))) {
      bytes.push(Number.parseInt(raw.toString('latin1', i + 1, i + 4), 8));
      i += 3;
    } else bytes.push(raw[i]!);
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Parse `getfattr -d -e hex --absolute-names` output into path -> name -> value. */
export function parseGetfattr(out: string): XattrMap {
  const map: XattrMap = new Map();
  let cur: Map<string, Buffer> | undefined;
  for (const line of out.split('\n')) {
    if (line.startsWith('# file: ')) {
      cur = new Map();
      map.set(unescapeName(line.slice(8)), cur);
    } else if (cur && line.length > 0) {
      const eq = line.indexOf('=');
      const name = eq < 0 ? line : line.slice(0, eq);
      const v = eq < 0 ? '' : line.slice(eq + 1);
      let val: Buffer;
      if (v.startsWith('0x')) val = Buffer.from(v.slice(2), 'hex');
      else if (v.startsWith('"')) val = Buffer.from(v.slice(1, -1), 'utf8');
      else val = Buffer.alloc(0);
      cur.set(unescapeName(name), val);
    }
  }
  for (const [k, v] of map) if (v.size === 0) map.delete(k);
  return map;
}

/**
 * Every xattr under `dir` (recursively, not following symlinks), keyed by absolute path.
 * Read by the syscall helper; where it cannot run, by one `getfattr` process for the whole tree.
 */
export async function readXattrsTree(dir: string): Promise<XattrMap> {
  try {
    return await syscalls.xattrsTree(dir);
  } catch (e) {
    if (e instanceof SyscallError) throw new SnapshotError('HELPER_FAILED', `reading the xattrs under ${dir} failed: ${errnoName(e.errno)}`);
    if (!(e instanceof HelperUnavailable)) throw e;
  }
  const r = await runTool('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', '--', dir], { allowFail: true });
  if (r.status !== 0 && r.stdout.length === 0 && r.stderr && !/Operation not supported/.test(r.stderr)) {
    throw new SnapshotError('HELPER_FAILED', `getfattr on ${dir} failed: ${r.stderr}`);
  }
  return parseGetfattr(r.stdout.toString('utf8'));
}

/** Xattrs that describe the overlay itself, never layer content. */
export function isOverlayXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}
