import { parseCpus, parseMemory, parsePidsLimit, parseSsh, type BuildOptions, type BuildResult } from '@hoist/builder';
import type { RegistryClient } from '@hoist/registry-client';
import { UsageError } from '../errors.js';
import { plainPrinter, type ProgressMode } from '../progress.js';
import type { TtyProgress } from '../tty-progress.js';
import { parseAllow, parseKeyValues, parseSecurityOpts, readSecrets } from '../args.js';
import { loadConfig } from '../config.js';
import { build, type BuildRequest } from '../library/build.js';
import { contextDirectory, readDockerfile } from '../library/dockerfile.js';
import { checkCommand, parseCall } from './check.js';

export interface BuildFlags {
  tag: string[];
  file?: string;
  buildArg: string[];
  target?: string;
  push?: boolean;
  root?: string;
  noCache?: boolean;
  noCacheFilter: string[];
  progress: ProgressMode;
  platform?: string;
  network?: string;
  format?: string;
  jobs?: string;
  secret: string[];
  runtime?: string;
  pull?: boolean;
  quiet?: boolean;
  cacheFrom: string[];
  cacheTo: string[];
  registryMirror?: string[];
  ssh?: string[];
  memory?: string;
  cpus?: string;
  pidsLimit?: string;
  explainCache?: boolean;
  /** `--output`/`-o` specs (see commands/outputs.ts). */
  output?: string[];
  /** `--allow` entitlements. */
  allow?: string[];
  /** `--security-opt seccomp=…`. */
  securityOpt?: string[];
  /** `--call build|check[,format=json]`; `--check` is `--call=check`. */
  call?: string;
  check?: boolean;
}

/** `hoist build`: flags → a {@link BuildRequest} → the library's build → lines on stderr, the digest on stdout. */
export async function buildCommand(context: string, f: BuildFlags, signal: AbortSignal): Promise<number> {
  const call = parseCall(f.call, f.check);
  if (call.name === 'check') return checkCommand(await readDockerfile(await contextDirectory(context), f.file), f, call);
  const mode: ProgressMode = f.quiet ? 'quiet' : f.progress === 'auto' ? (process.stderr.isTTY ? 'tty' : 'plain') : f.progress;
  // the renderer and the registry client load only when used
  const tty = mode === 'tty' ? new (await import('../tty-progress.js')).TtyProgress(process.stderr) : undefined;
  const log = (s: string): void => void process.stderr.write(mode === 'quiet' ? '' : s);
  const t0 = Date.now();
  let built = false;
  try {
    const r = await build({
      ...(await requestFromFlags(context, f)),
      registry: lazyRegistry(mode, tty),
      progress: tty ? tty.onEvent : plainPrinter((s) => process.stderr.write(s), mode),
      log,
      onBuilt: (result) => {
        built = true;
        printBuilt(result, mode, ((Date.now() - t0) / 1000).toFixed(1), tty);
      },
      onPushed: (ref) => process.stderr.write(`pushed ${ref}\n`),
      signal,
    });
    if (!r.wroteStdout) process.stdout.write(`${r.digest}\n`);
    return 0;
  } catch (e) {
    if (!built) tty?.finish('build failed');
    // output errors are reported as the other output commands report them
    if (e instanceof Error && e.name === 'ExportError') return (await import('./outputs.js')).exportErrors(() => Promise.reject(e));
    throw e;
  }
}

/** The summary after the build: `built DIGEST in Ns (…)` and the tags (a JSON record with --progress=json). */
function printBuilt(result: BuildResult, mode: ProgressMode, secs: string, tty: TtyProgress | undefined): void {
  tty?.finish(`built in ${secs}s`);
  if (mode === 'json') {
    process.stderr.write(JSON.stringify({ time: new Date().toISOString(), type: 'result', digest: result.descriptor.digest, tags: result.tags, seconds: Number(secs), ...result.stats }) + '\n');
  } else if (mode !== 'quiet') {
    process.stderr.write(`built ${result.descriptor.digest} in ${secs}s (${result.stats.executed} steps run, ${result.stats.cached} cached)\n`);
    for (const t of result.tags) process.stderr.write(`tagged ${t}\n`);
  }
}

/** The flags as a build request; bad values are usage errors. */
async function requestFromFlags(context: string, f: BuildFlags): Promise<BuildRequest> {
  const network = f.network ?? 'default';
  if (network !== 'default' && network !== 'host' && network !== 'none') throw new UsageError(`--network must be default, host or none, not "${f.network}"`);
  if (f.format && f.format !== 'oci' && f.format !== 'docker') throw new UsageError(`--format must be oci or docker, not "${f.format}"`);
  const jobs = f.jobs ? Number(f.jobs) : undefined;
  if (jobs !== undefined && !(Number.isInteger(jobs) && jobs > 0)) throw new UsageError(`--jobs must be a positive integer, not "${f.jobs}"`);
  const cfg = loadConfig();
  const seccomp = await parseSecurityOpts(f.securityOpt ?? []);
  const runtime = f.runtime ?? cfg.runtime;
  const sde = process.env.SOURCE_DATE_EPOCH;
  return {
    context,
    ...(f.file !== undefined ? { dockerfile: f.file } : {}),
    ...(f.root !== undefined ? { root: f.root } : {}),
    tags: f.tag,
    buildArgs: parseKeyValues(f.buildArg, '--build-arg', true),
    ...(f.target ? { target: f.target } : {}),
    ...(f.platform ? { platform: f.platform } : {}),
    ...(f.push ? { push: true } : {}),
    outputs: f.output ?? [],
    cacheFrom: f.cacheFrom ?? [],
    cacheTo: f.cacheTo ?? [],
    ...(f.pull ? { pull: true } : {}),
    registryMirrors: [...(f.registryMirror ?? []), ...(cfg.registryMirrors ?? [])],
    noCache: !!f.noCache,
    noCacheFilter: f.noCacheFilter,
    format: (f.format as 'oci' | 'docker' | undefined) ?? 'oci',
    network,
    allow: parseAllow(f.allow ?? []),
    ...(seccomp ? { seccomp } : {}),
    ...(jobs ? { jobs } : {}),
    ...(runtime ? { runtime } : {}),
    ...(sde !== undefined && /^\d+$/.test(sde) ? { sourceDateEpoch: Number(sde) } : {}),
    secrets: await readSecrets(f.secret),
    ...sandboxFlags(f),
  };
}

/** The command's registry client (progress on stderr), made and its package loaded on first use. */
function lazyRegistry(mode: ProgressMode, tty: TtyProgress | undefined): () => Promise<RegistryClient> {
  return () => import('../registry.js').then((m) => m.makeRegistryClient(mode, tty ? { onTransfer: (id, text) => tty.transfer(id, text) } : {}));
}

/** --ssh, --memory, --cpus, --pids-limit, --explain-cache as build options (bad values are usage errors). */
function sandboxFlags(f: BuildFlags): Pick<BuildOptions, 'ssh' | 'resources' | 'explainCache'> {
  try {
    const resources: NonNullable<BuildOptions['resources']> = {};
    if (f.memory !== undefined) resources.memoryBytes = parseMemory(f.memory);
    if (f.cpus !== undefined) resources.cpus = parseCpus(f.cpus);
    if (f.pidsLimit !== undefined) resources.pidsLimit = parsePidsLimit(f.pidsLimit);
    return {
      ...(f.ssh && f.ssh.length > 0 ? { ssh: parseSsh(f.ssh) } : {}),
      ...(Object.keys(resources).length > 0 ? { resources } : {}),
      ...(f.explainCache ? { explainCache: true } : {}),
    };
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}
