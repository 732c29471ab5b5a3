import { spawn, spawnSync } from 'node:child_process';
import { existsSync, promises as fsp, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { runTool } from '@hoist/snapshotter';
import { BuildError } from '../errors.js';
import { generateSpec, type SandboxOptions } from './spec.js';
import { forThisNamespace } from './userns-spec.js';
import { containerCgroups, removeCgroup, warmCgroupAttach } from './cgroups.js';

export interface RuntimeInfo {
  name: string;
  path: string;
}

const SEARCH_PATH = (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':');

/** The path of a runtime binary (`runc`, `crun` or a path), if it is installed. */
export function findRuntime(bin: string): string | undefined {
  if (bin.includes('/')) return existsSync(bin) ? bin : undefined;
  for (const dir of SEARCH_PATH) {
    const p = path.join(dir, bin);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** True when the host mixes cgroup v1 controllers with a v2 hierarchy, which crun 1.8 refuses. */
export function hybridCgroups(): boolean {
  try {
    const lines = readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n');
    const v2 = lines.some((l) => l.startsWith('0::'));
    const v1 = lines.some((l) => !l.startsWith('0::'));
    return v1 && v2;
  } catch {
    return false;
  }
}

/**
 * Pick an OCI runtime that works here. `preferred` (from `--runtime` or config) wins when it
 * exists; otherwise runc, then crun unless the host has hybrid cgroups (crun 1.8 refuses those).
 */
export function detectRuntime(preferred?: string): RuntimeInfo {
  const tried: string[] = [];
  const candidates = preferred ? [preferred] : ['runc', 'crun'];
  for (const c of candidates) {
    const p = findRuntime(c);
    if (!p) {
      tried.push(`${c}: not installed`);
      continue;
    }
    const name = path.basename(p);
    if (!preferred && name === 'crun' && hybridCgroups()) {
      tried.push('crun: refuses hosts with hybrid cgroups ("cgroups in hybrid mode not supported")');
      continue;
    }
    const v = spawnSync(p, ['--version'], { encoding: 'utf8' });
    if (v.status !== 0) {
      tried.push(`${c}: \`${p} --version\` failed`);
      continue;
    }
    return { name, path: p };
  }
  throw new BuildError(
    'RUNTIME_UNAVAILABLE',
    `no working OCI runtime (${tried.join('; ')}); install one with: apt-get install runc`,
  );
}

/** The first runtime detectRuntime would try, if it is installed and not refused for the host. */
function firstCandidate(preferred?: string): RuntimeInfo | undefined {
  const c = preferred ?? 'runc';
  const p = findRuntime(c) ?? (preferred ? undefined : findRuntime('crun'));
  if (!p) return undefined;
  const name = path.basename(p);
  if (!preferred && name === 'crun' && hybridCgroups()) return undefined;
  return { name, path: p };
}

async function versionWorks(p: string): Promise<boolean> {
  return (await runTool(p, ['--version'], { allowFail: true }).catch(() => undefined))?.status === 0;
}

/** Where a passed `--version` check is remembered: `file`, written through a temp file in `tmpDir`. */
export interface VersionMemo {
  file: string;
  tmpDir: string;
}

/**
 * The binary file at `p` as it is now (device, inode, size, mtime, ctime, in ns): a binary that
 * is replaced, rewritten or re-permissioned gets another stamp (a rewrite moves ctime, which no
 * user can set back).
 */
function binaryStamp(p: string): string | undefined {
  try {
    const st = statSync(p, { bigint: true });
    return [p, st.dev, st.ino, st.size, st.mode, st.mtimeNs, st.ctimeNs].join(' ');
  } catch {
    return undefined;
  }
}

async function checkedBefore(memo: VersionMemo, stamp: string): Promise<boolean> {
  return (await fsp.readFile(memo.file, 'utf8').catch(() => '')) === stamp;
}

async function rememberCheck(memo: VersionMemo, stamp: string): Promise<void> {
  await fsp.mkdir(memo.tmpDir, { recursive: true });
  const tmp = path.join(memo.tmpDir, `checked-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    await fsp.writeFile(tmp, stamp, { mode: 0o600 });
    await fsp.mkdir(path.dirname(memo.file), { recursive: true });
    await fsp.rename(tmp, memo.file);
  } catch {
    await fsp.rm(tmp, { force: true });
  }
}

/**
 * detectRuntime without blocking: the `--version` check runs while the build goes on (it costs a
 * process start, and the runtime's own start-up on a busy CPU). With `memo`, a check the same
 * binary passed before (see binaryStamp) is not made again. Where the first candidate fails,
 * detectRuntime gives the answer (and the error).
 */
export async function detectRuntimeAsync(preferred?: string, memo?: VersionMemo): Promise<RuntimeInfo> {
  const first = firstCandidate(preferred);
  const stamp = first && memo ? binaryStamp(first.path) : undefined;
  if (first && stamp && (await checkedBefore(memo!, stamp))) return first;
  if (first && (await versionWorks(first.path))) {
    if (stamp) await rememberCheck(memo!, stamp);
    return first;
  }
  return detectRuntime(preferred);
}

export interface RunResult {
  exitCode: number;
  signal?: string;
}

export interface RunOptions {
  /** Where the runtime keeps its state (`--root`). */
  stateDir: string;
  /** Where the bundle (config.json) is written, a private dir (see private-dir.ts); removed afterwards. */
  bundleParent: string;
  stdout?: (chunk: Buffer) => void;
  stderr?: (chunk: Buffer) => void;
  /** Inherit the terminal (for `hoist run -it`). */
  inheritStdio?: boolean;
  signal?: AbortSignal;
  /** Takes the bundle's removal, which then runs on after the result (the caller waits for it); else awaited here. */
  defer?: (work: Promise<unknown>) => void;
}

/**
 * Run one process in a fresh sandbox with the OCI runtime: writes a bundle with a generated
 * spec, `runtime run`s it, and always deletes the container and the bundle afterwards.
 */
export async function runInSandbox(rt: RuntimeInfo, sb: SandboxOptions, opts: RunOptions): Promise<RunResult> {
  const id = `hoist-${process.pid}-${randomBytes(6).toString('hex')}`;
  const bundle = path.join(opts.bundleParent, id);
  // made while the spec is generated (writeBundle); removed afterwards only where it was made
  const made = fsp.mkdir(bundle, { recursive: true, mode: 0o700 });
  made.catch(() => undefined);
  let exited = false;
  try {
    warmCgroupAttach();
    await writeBundle({ bundle, made, stateDir: opts.stateDir }, { ...sb, cgroupsPath: sb.cgroupsPath ?? `/hoist/${id}` });
    const r = await startContainer(rt, { id, bundle, opts });
    // the runtime exited (not killed by a signal): it ended the container and removed its cgroups
    exited = r.signal === undefined;
    return r;
  } finally {
    // the container goes before the result (its processes could still write to the root);
    // the bundle (config.json in the private directory) may go while the caller goes on
    await deleteContainer(rt, opts.stateDir, id);
    if (!exited) await emptyCgroups(id);
    // a config.json (and a secret or two) in memory: removed at once, not a few thread pool turns later
    const removed = made.then(() => rmSync(bundle, { recursive: true, force: true }), () => undefined);
    if (opts.defer) opts.defer(removed);
    else await removed;
  }
}

/**
 * After a container that did not end by itself (the build was cancelled, the runtime failed or
 * was killed): wait until nothing runs in its cgroups any more, killing what is left. `runtime
 * kill` and `delete --force` signal the processes and return; a process killed with its PID
 * namespace can still be exiting then, and hoist must not be gone before its RUN is. Where the
 * runtime ended the container itself, it removed the cgroups and there is nothing to look at.
 */
async function emptyCgroups(id: string): Promise<void> {
  for (const dir of containerCgroups((n) => n === id)) await removeCgroup(dir);
}

/** `runtime run` the bundle's container and wait for it; its output goes to the options' callbacks. */
async function startContainer(rt: RuntimeInfo, c: { id: string; bundle: string; opts: RunOptions }): Promise<RunResult> {
  const { id, opts } = c;
  let stderrText = '';
  try {
    return await new Promise<RunResult>((resolve, reject) => {
      const child = spawn(rt.path, ['--root', opts.stateDir, 'run', '--bundle', c.bundle, id], { stdio: opts.inheritStdio ? 'inherit' : ['ignore', 'pipe', 'pipe'] });
      child.stdout?.on('data', (d: Buffer) => opts.stdout?.(d));
      child.stderr?.on('data', (d: Buffer) => {
        stderrText += d.toString();
        if (stderrText.length > 65536) stderrText = stderrText.slice(-32768);
        opts.stderr?.(d);
      });
      const onAbort = (): void => {
        spawnSync(rt.path, ['--root', opts.stateDir, 'kill', id, 'KILL'], { stdio: 'ignore' });
        child.kill('SIGKILL');
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      child.on('error', (e) => reject(new BuildError('RUNTIME_FAILED', `could not start ${rt.name} (${rt.path}): ${e.message}`, { cause: e })));
      child.on('close', (code, sig) => {
        opts.signal?.removeEventListener('abort', onAbort);
        if (opts.signal?.aborted) {
          reject(new BuildError('CANCELLED', 'build cancelled'));
          return;
        }
        const res: RunResult = { exitCode: code ?? 128 };
        if (sig) res.signal = sig;
        resolve(res);
      });
    });
  } catch (e) {
    if (e instanceof BuildError) throw e;
    throw new BuildError('RUNTIME_FAILED', `${rt.name} failed: ${(e as Error).message}\n${stderrText}`, { cause: e });
  }
}

/**
 * The bundle: config.json written once its directory (`made`, begun by the caller) and the
 * runtime's state directory exist, the spec generated meanwhile. It holds the process
 * environment (secrets of RUN --mount=type=secret,env=… included): root only. Written in one
 * synchronous call: a few KiB in the private directory (a tmpfs where possible), not three
 * thread-pool round trips.
 */
async function writeBundle(b: { bundle: string; made: Promise<unknown>; stateDir: string }, sb: SandboxOptions): Promise<void> {
  const dirs = Promise.all([b.made, fsp.mkdir(b.stateDir, { recursive: true })]);
  dirs.catch(() => undefined);
  let text: string;
  try {
    text = JSON.stringify(forThisNamespace(generateSpec(sb)));
  } catch (e) {
    await dirs.catch(() => undefined);
    throw e;
  }
  await dirs;
  writeFileSync(path.join(b.bundle, 'config.json'), text, { mode: 0o600 });
}

/**
 * `runc run` (and `crun run`) deletes its container when the process exits, state dir
 * `<stateDir>/<id>` included: a `delete --force` then only says "container does not exist".
 * It runs where the state is still there (the runtime was killed, a cancelled build).
 */
async function deleteContainer(rt: RuntimeInfo, stateDir: string, id: string): Promise<void> {
  if (!existsSync(path.join(stateDir, id))) return;
  await new Promise<void>((resolve) => {
    const child = spawn(rt.path, ['--root', stateDir, 'delete', '--force', id], { stdio: 'ignore' });
    child.on('error', () => resolve());
    child.on('close', () => resolve());
  });
}
