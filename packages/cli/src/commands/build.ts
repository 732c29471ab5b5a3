import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { build, BuildError, ProotExecutor, parseCpus, parseMemory, parsePidsLimit, parseSsh, type BuildEvent, type BuildOptions } from '@hoist/builder';
import { formatReference, parsePlatform, parseReference } from '@hoist/oci';
import { LayerChecker } from '@hoist/snapshotter';
import { UsageError } from '../errors.js';
import { openStore } from '../store.js';
import { StoreThenRegistry } from '../image-source.js';
import { plainPrinter, type ProgressMode } from '../progress.js';
import { makeRegistryClient } from '../registry.js';
import { parseAllow, parseKeyValues, parseSecurityOpts, readSecrets } from '../args.js';
import { wireCache } from './build-cache.js';
import { TtyProgress } from '../tty-progress.js';
import { loadConfig } from '../config.js';
import { parseBuildOutputs, writeBuildOutputs } from './outputs.js';
import { checkCommand, parseCall } from './check.js';
import { chooseIsolation, hostIsolationFacts, isolationFlag } from '../isolation.js';

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
  /** `--isolation auto|oci|rootless|proot`. */
  isolation?: string;
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

/** Locate the Dockerfile and its ignore file as Docker does (`<name>.dockerignore` wins). */
export async function readDockerfile(contextDir: string, file?: string): Promise<{ path: string; text: string; dockerignore?: string }> {
  const dfPath = file === '-' ? '-' : path.resolve(file ?? path.join(contextDir, 'Dockerfile'));
  let text: string;
  try {
    text = dfPath === '-' ? await readStdin() : await fsp.readFile(dfPath, 'utf8');
  } catch {
    throw new UsageError(`cannot read Dockerfile ${dfPath}: no such file; pass -f PATH or add a Dockerfile to ${contextDir}`);
  }
  let dockerignore: string | undefined;
  for (const cand of dfPath === '-' ? [] : [`${dfPath}.dockerignore`]) {
    dockerignore = await fsp.readFile(cand, 'utf8').catch(() => undefined);
  }
  dockerignore ??= await fsp.readFile(path.join(contextDir, '.dockerignore'), 'utf8').catch(() => undefined);
  const shown = dfPath === '-' ? '-' : path.relative(process.cwd(), dfPath) || dfPath;
  return dockerignore !== undefined ? { path: shown, text, dockerignore } : { path: shown, text };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function buildCommand(context: string, f: BuildFlags, signal: AbortSignal): Promise<number> {
  const contextDir = path.resolve(context);
  const st = await fsp.stat(contextDir).catch(() => undefined);
  if (!st?.isDirectory()) throw new UsageError(`build context ${context} is not a directory`);
  const call = parseCall(f.call, f.check);
  const df = await readDockerfile(contextDir, f.file);
  if (call.name === 'check') return checkCommand(df, f, call);
  const opened = await openStore(f.root);
  const snapshotter = await opened.snapshotter();
  const mode: ProgressMode = f.quiet ? 'quiet' : f.progress === 'auto' ? (process.stderr.isTTY ? 'tty' : 'plain') : f.progress;
  const tty = mode === 'tty' ? new TtyProgress(process.stderr) : undefined;
  const registry = makeRegistryClient(mode, tty ? { onTransfer: (id, text) => tty.transfer(id, text) } : {});
  const print = tty ? tty.onEvent : plainPrinter((s) => process.stderr.write(s), mode);
  const requestedNetwork = f.network ?? 'default';
  if (requestedNetwork !== 'default' && requestedNetwork !== 'host' && requestedNetwork !== 'none') throw new UsageError(`--network must be default, host or none, not "${f.network}"`);
  const { network, executor } = isolationWiring(f, requestedNetwork, opened.root);
  const allow = parseAllow(f.allow ?? []);
  const seccomp = await parseSecurityOpts(f.securityOpt ?? []);
  if (f.format && f.format !== 'oci' && f.format !== 'docker') throw new UsageError(`--format must be oci or docker, not "${f.format}"`);
  const jobs = f.jobs ? Number(f.jobs) : undefined;
  if (jobs !== undefined && !(Number.isInteger(jobs) && jobs > 0)) throw new UsageError(`--jobs must be a positive integer, not "${f.jobs}"`);
  const outputs = parseBuildOutputs(f.output);
  if ((f.push || outputs.push) && f.tag.length === 0) throw new UsageError('--push and --output type=registry need at least one -t NAME:TAG');
  // `--output type=registry` alone (as in buildx): nothing is kept locally, so layers that only an
  // imported cache or the base image's registry holds are mounted registry-side, never downloaded
  const registryOnly = outputs.specs.length > 0 && outputs.specs.every((o) => o.type === 'registry');
  const sde = process.env.SOURCE_DATE_EPOCH;
  const cache = await wireCache(opened.store, registry, f.cacheFrom ?? [], f.cacheTo ?? [], signal, (s) => process.stderr.write(mode === 'quiet' ? '' : s));
  const t0 = Date.now();
  let result: Awaited<ReturnType<typeof build>>;
  try {
    result = await build({
    store: opened.store,
    snapshotter,
    images: new StoreThenRegistry({
      store: opened.store,
      registry: () => registry,
      pull: f.pull ? 'always' : 'missing',
      mirrors: [...(f.registryMirror ?? []), ...(loadConfig().registryMirrors ?? [])],
      checks: new LayerChecker(opened.store.blobs),
    }),
    root: opened.root,
    contextDir,
    dockerfile: { path: df.path, text: df.text },
    ...(df.dockerignore !== undefined ? { dockerignore: df.dockerignore } : {}),
    buildArgs: parseKeyValues(f.buildArg, '--build-arg', true),
    ...(f.target ? { target: f.target } : {}),
    ...(f.platform ? { platform: parsePlatform(f.platform) } : {}),
    tags: f.tag,
    noCache: !!f.noCache,
    noCacheFilter: f.noCacheFilter,
    format: (f.format as 'oci' | 'docker' | undefined) ?? 'oci',
    network,
    ...(executor ? { executor } : {}),
    allow,
    ...(seccomp ? { seccomp } : {}),
    ...(jobs ? { jobs } : {}),
    ...((f.runtime ?? loadConfig().runtime) ? { runtime: (f.runtime ?? loadConfig().runtime)! } : {}),
    ...(sde !== undefined && /^\d+$/.test(sde) ? { sourceDateEpoch: Number(sde) } : {}),
    secrets: await readSecrets(f.secret),
    ...sandboxFlags(f),
    progress: (ev: BuildEvent) => print(ev),
    remoteCaches: cache.sources,
    ...(registryOnly ? { lazyLayers: true } : {}),
    signal,
  });
  } catch (e) {
    tty?.finish('build failed');
    throw e;
  }
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  tty?.finish(`built in ${secs}s`);
  if (mode === 'json') {
    process.stderr.write(JSON.stringify({ time: new Date().toISOString(), type: 'result', digest: result.descriptor.digest, tags: result.tags, seconds: Number(secs), ...result.stats }) + '\n');
  } else if (mode !== 'quiet') {
    process.stderr.write(`built ${result.descriptor.digest} in ${secs}s (${result.stats.executed} steps run, ${result.stats.cached} cached)\n`);
    for (const t of result.tags) process.stderr.write(`tagged ${t}\n`);
  }
  await cache.exportAll(result, signal, (s) => process.stderr.write(mode === 'quiet' ? '' : s));
  await writeBuildOutputs(outputs, { store: opened.store, snapshotter, descriptor: result.descriptor, tags: result.tags, signal, log: (s) => process.stderr.write(mode === 'quiet' ? '' : s), ...(f.platform ? { platform: parsePlatform(f.platform) } : {}) });
  if (f.push || outputs.push) {
    // a lazy result is not tagged locally (its layers are not all here): push the requested tags
    const pushTags = result.tags.length > 0 ? result.tags : f.tag.map((t) => formatReference(parseReference(t)));
    for (const t of pushTags) {
      await registry.push(opened.store, result.descriptor, t, { signal, mountFrom: cache.mountFrom });
      process.stderr.write(`pushed ${t}\n`);
    }
  }
  if (!outputs.stdout) process.stdout.write(`${result.descriptor.digest}\n`);
  return 0;
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

/**
 * The no-privilege mode (issue 10, mode 2): RUN under proot, which shares the pod's network
 * (the default network becomes the host's; --network none cannot be kept) and sets no limits.
 */
function isolationWiring(f: BuildFlags, network: 'default' | 'host' | 'none', root: string): { network: 'default' | 'host' | 'none'; executor?: ProotExecutor } {
  const choice = chooseIsolation(isolationFlag(f.isolation ? ['--isolation', f.isolation] : []), hostIsolationFacts());
  if (choice.mode !== 'proot') return { network };
  const missing = [f.memory && '--memory', f.cpus && '--cpus', f.pidsLimit && '--pids-limit'].filter(Boolean);
  if (network === 'none' || missing.length > 0) {
    const what = network === 'none' ? '--network none needs a network namespace' : `${missing.join(', ')} need${missing.length > 1 ? '' : 's'} cgroups`;
    throw new BuildError('ISOLATION_UNSUPPORTED', `${what}, which RUN under proot cannot have (${choice.reason}). Fix: build without it, or give hoist user namespaces (--isolation rootless) or root (--isolation oci)`);
  }
  return { network: 'host', executor: new ProotExecutor({ tmpDir: path.join(root, 'tmp'), reason: choice.reason }) };
}
