import { spawn } from 'node:child_process';
import { createWriteStream, promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fetchGit, fetchUrl, isUrl, parseGitRef } from '@hoist/builder';
import { pidAlive, statOrUndefined } from '@hoist/oci';
import { UsageError } from './errors.js';

/** The build context as a directory, wherever it came from; `cleanup` removes what was unpacked. */
export interface PreparedContext {
  dir: string;
  /** The Dockerfile's text when stdin was a bare Dockerfile (`hoist build - < Dockerfile`). */
  dockerfileText?: string;
  /** Unpacked or cloned (not the user's directory): a relative `-f` is a path inside it, as in docker. */
  unpacked: boolean;
  /** A git or http(s) URL context: the URL as given and the commit checked out / the sha256 of the file fetched (the provenance's config source). */
  source?: { uri: string; digest: Record<string, string> };
  cleanup(): Promise<void>;
}

/**
 * `CONTEXT` as docker buildx build reads it: a directory; `-` (stdin: a tar archive, plain or
 * compressed, or else a bare Dockerfile and an empty context); a tarball file; a git URL
 * (`https://host/repo.git#ref:subdir`, `git@host:repo.git`), cloned as ADD clones; or an
 * http(s) URL of a tarball (unpacked) or a plain-text Dockerfile (an empty context).
 */
export async function prepareContext(context: string, o: { dockerfileFromStdin: boolean; signal?: AbortSignal }): Promise<PreparedContext> {
  if (context === '-') {
    if (o.dockerfileFromStdin) throw new UsageError('the context and the Dockerfile cannot both come from stdin (- and -f -)');
    return fromStdin(o.signal);
  }
  const git = /^[a-z][a-z0-9+.-]*:\/\/|^git@/i.test(context) ? parseGitRef(context) : undefined;
  if (git) {
    const tmp = await contextTempDir();
    try {
      const { root, commit } = await fetchGit(git, tmp, o.signal ? { signal: o.signal } : {});
      return { dir: root, unpacked: true, source: { uri: context, digest: { sha1: commit } }, cleanup: () => rmDir(tmp) };
    } catch (e) {
      await rmDir(tmp);
      throw e;
    }
  }
  if (isUrl(context)) return fromUrl(context, o);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(context)) throw new UsageError(`build context ${context}: unsupported URL; give a directory, a tarball, - (stdin), a git URL (https://host/repo.git#ref:subdir) or an http(s) URL of a tarball or a Dockerfile`);
  // a synchronous stat (issue 16): microseconds, where an awaited one is a thread-pool round trip
  const st = statOrUndefined(context);
  if (st?.isDirectory()) return { dir: path.resolve(context), unpacked: false, cleanup: async () => undefined };
  if (st?.isFile()) {
    if (!(await isArchive(context))) throw new UsageError(`build context ${context} is a file but not a tar archive (plain, gzip, bzip2, xz or zstd)`);
    return unpack(context);
  }
  throw new UsageError(`build context ${context} is not a directory, a tarball, -, a git URL or an http(s) URL`);
}

/** A remote tarball (unpacked) or a remote plain-text file (the Dockerfile, with an empty context), as docker build reads a URL. */
async function fromUrl(url: string, o: { dockerfileFromStdin: boolean; signal?: AbortSignal }): Promise<PreparedContext> {
  const tmp = await contextTempDir();
  try {
    const { name, digest } = await fetchUrl(url, tmp, { label: `build context ${url}`, ...(o.signal ? { signal: o.signal } : {}) });
    const ctx = await fromFile(path.join(tmp, name), tmp, { source: url, dockerfileFromStdin: o.dockerfileFromStdin });
    return { ...ctx, source: { uri: url, digest: { sha256: digest.slice('sha256:'.length) } } };
  } catch (e) {
    await rmDir(tmp);
    throw e;
  }
}

/** A downloaded or piped file in `tmp`: a tar archive is unpacked, anything else is the Dockerfile. */
async function fromFile(file: string, tmp: string, o: { source: string; dockerfileFromStdin: boolean }): Promise<PreparedContext> {
  if (await isArchive(file)) {
    const ctx = await unpack(file);
    return { dir: ctx.dir, unpacked: true, cleanup: async () => (await ctx.cleanup(), await rmDir(tmp)) };
  }
  if (o.dockerfileFromStdin) throw new UsageError(`build context ${o.source} is a Dockerfile, not a tar archive, and -f - gives another one: give one of them`);
  const dir = path.join(tmp, 'context');
  await fsp.mkdir(dir);
  return { dir, dockerfileText: await fsp.readFile(file, 'utf8'), unpacked: true, cleanup: () => rmDir(tmp) };
}

async function fromStdin(signal?: AbortSignal): Promise<PreparedContext> {
  const tmp = await contextTempDir();
  const file = path.join(tmp, 'stdin');
  try {
    await pipeline(process.stdin, createWriteStream(file), signal ? { signal } : {});
    return await fromFile(file, tmp, { source: '- (stdin)', dockerfileFromStdin: false });
  } catch (e) {
    await rmDir(tmp);
    throw e;
  }
}

const MAGIC: Array<[number, number[]]> = [
  [0, [0x1f, 0x8b]], // gzip
  [0, [0x42, 0x5a, 0x68]], // bzip2
  [0, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]], // xz
  [0, [0x28, 0xb5, 0x2f, 0xfd]], // zstd
  [257, [0x75, 0x73, 0x74, 0x61, 0x72]], // "ustar" of a tar header
];

/** Whether a file starts like a tar archive or a compressed stream (as docker sniffs stdin). */
async function isArchive(file: string): Promise<boolean> {
  const fh = await fsp.open(file, 'r');
  try {
    const buf = Buffer.alloc(262);
    const { bytesRead } = await fh.read(buf, 0, 262, 0);
    return MAGIC.some(([at, bytes]) => bytesRead >= at + bytes.length && bytes.every((b, i) => buf[at + i] === b));
  } finally {
    await fh.close();
  }
}

/** Unpack with GNU tar (it detects the compression, drops leading `/` and refuses `..` members). */
async function unpack(archive: string): Promise<PreparedContext> {
  const dir = await contextTempDir();
  // tar that cannot be run (not installed, no PATH) must not leave the temp dir either
  const r = await untar(archive, dir).catch(async (e: unknown) => {
    await rmDir(dir);
    throw e;
  });
  if (r.code !== 0) {
    await rmDir(dir);
    throw new UsageError(`build context ${archive}: cannot unpack the archive: ${r.stderr.trim()}`);
  }
  return { dir, unpacked: true, cleanup: () => rmDir(dir) };
}

function untar(archive: string, dir: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('tar', ['-x', '-f', path.resolve(archive), '-C', dir, '--no-same-owner'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stderr }));
  });
}

const CONTEXT_DIR = /^hoist-context-(\d+)-/;

/**
 * A temp dir for an unpacked or cloned context, named with this process's pid: one that a hoist
 * killed with SIGKILL left behind is removed by the next hoist that makes one.
 */
export async function contextTempDir(tmp = os.tmpdir()): Promise<string> {
  await removeDeadContexts(tmp);
  return fsp.mkdtemp(path.join(tmp, `hoist-context-${process.pid}-`));
}

/** Context dirs of processes that are gone (another user's are not ours to remove: rm fails, quietly). */
async function removeDeadContexts(tmp: string): Promise<void> {
  const names = await fsp.readdir(tmp).catch(() => [] as string[]);
  for (const n of names) {
    const pid = Number(CONTEXT_DIR.exec(n)?.[1]);
    if (pid > 0 && !pidAlive(pid)) await rmDir(path.join(tmp, n)).catch(() => undefined);
  }
}

function rmDir(dir: string): Promise<void> {
  return fsp.rm(dir, { recursive: true, force: true });
}
