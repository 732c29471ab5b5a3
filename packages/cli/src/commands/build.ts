import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { build, buildPlatforms, BuildError, ProotExecutor, parseCpus, parseMemory, parsePidsLimit, parseSsh, type BuildEvent, type BuildOptions, type BuildResult, type MultiBuildResult } from '@hoist/builder';
import { formatReference, hostPlatform, parsePlatform, parseReference, type Platform } from '@hoist/oci';
import { LayerChecker } from '@hoist/snapshotter';
import { ExitError, UsageError } from '../errors.js';
import { openStore } from '../store.js';
import { StoreThenRegistry } from '../image-source.js';
import { prepareContext } from '../build-context.js';
import { parseAttestations } from '../attest-flags.js';
import { plainPrinter, type ProgressMode } from '../progress.js';
import { parseAllow, parseKeyValues, parseSecurityOpts, readSecrets } from '../args.js';
import type { CacheWiring } from './build-cache.js';
import type { RegistryClient } from '@hoist/registry-client';
import type { TtyProgress } from '../tty-progress.js';
import { loadConfig } from '../config.js';
import type { BuildOutputs } from './outputs.js';
import { checkCommand, parseCall } from './check.js';
import { annotationsFor, parseAnnotations, parseLabels, parseRunHost, refuseIndexAnnotations } from '../buildx-flags.js';
import { buildMetadata, checkResultFile, clearIidFile, imageId, writeIidFile, writeMetadataFile } from './build-result.js';
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
  /** buildx's `--label`, `--annotation`, `--add-host`, `--shm-size`, `--ulimit`. */
  label?: string[];
  annotation?: string[];
  addHost?: string[];
  shmSize?: string;
  ulimit?: string[];
  /** `--iidfile`, `--metadata-file`: files CI tools read after the build. */
  iidfile?: string;
  metadataFile?: string;
  /** `--attest`, `--provenance`, `--sbom` (accepted with buildx's syntax; not attached yet). */
  attest?: string[];
  provenance?: string;
  sbom?: string;
  /** `--load`: into the Docker daemon (DOCKER_HOST or /var/run/docker.sock). */
  load?: boolean;
  /** `--build-context NAME=DIR|docker-image://REF|oci-layout://PATH[:TAG]|GIT-URL`. */
  buildContext?: string[];
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
  const call = parseCall(f.call, f.check);
  const prepared = await prepareContext(context, { dockerfileFromStdin: f.file === '-', signal });
  try {
    return await jsonErrors(f, async () => {
      const df = prepared.dockerfileText !== undefined ? { path: '-', text: prepared.dockerfileText } : await readDockerfile(prepared.dir, prepared.unpacked && f.file && f.file !== '-' && !path.isAbsolute(f.file) ? path.join(prepared.dir, f.file) : f.file);
      if (call.name === 'check') return await checkCommand(df, f, call);
      return await buildIn(prepared.dir, df, f, signal);
    });
  } finally {
    await prepared.cleanup();
  }
}

async function buildIn(contextDir: string, df: Awaited<ReturnType<typeof readDockerfile>>, f: BuildFlags, signal: AbortSignal): Promise<number> {
  const opened = await openStore(f.root);
  const snapshotter = await opened.snapshotter();
  const mode: ProgressMode = f.quiet ? 'quiet' : f.progress === 'auto' ? (process.stderr.isTTY ? 'tty' : 'plain') : f.progress;
  // the renderer, the registry client, cache import/export and output writers load only when used
  const tty = mode === 'tty' ? new (await import('../tty-progress.js')).TtyProgress(process.stderr) : undefined;
  const registry = lazyRegistry(mode, tty);
  const print = tty ? tty.onEvent : plainPrinter((s) => process.stderr.write(s), mode);
  const requestedNetwork = f.network ?? 'default';
  if (requestedNetwork !== 'default' && requestedNetwork !== 'host' && requestedNetwork !== 'none') throw new UsageError(`--network must be default, host or none, not "${f.network}"`);
  const { network, executor } = isolationWiring(f, requestedNetwork, opened.root);
  const allow = parseAllow(f.allow ?? []);
  const seccomp = await parseSecurityOpts(f.securityOpt ?? []);
  if (f.format && f.format !== 'oci' && f.format !== 'docker') throw new UsageError(`--format must be oci or docker, not "${f.format}"`);
  const jobs = f.jobs ? Number(f.jobs) : undefined;
  if (jobs !== undefined && !(Number.isInteger(jobs) && jobs > 0)) throw new UsageError(`--jobs must be a positive integer, not "${f.jobs}"`);
  const outputs: BuildOutputs = f.output?.length ? (await import('./outputs.js')).parseBuildOutputs(f.output) : { specs: [], push: false, stdout: false };
  const platforms = parsePlatforms(f.platform);
  checkMultiPlatform(f, outputs, platforms.length);
  const single: Platform | undefined = platforms.length === 1 ? platforms[0] : undefined;
  const buildx = await buildxOptions(f);
  // loaded only when used (a plain build loads neither the exporter nor the context importer)
  const namedMod = f.buildContext?.length ? await import('../named-contexts.js') : undefined;
  const named = namedMod ? await namedMod.parseBuildContexts(f.buildContext ?? []) : [];
  const dockerMod = f.load ? await import('../docker-load.js') : undefined;
  const docker = dockerMod?.requireDockerEndpoint();
  const attestations = parseAttestations(f);
  if ((f.push || outputs.push) && f.tag.length === 0) throw new UsageError('--push and --output type=registry need at least one -t NAME:TAG');
  // `--output type=registry` alone (as in buildx): nothing is kept locally, so layers that only an
  // imported cache or the base image's registry holds are mounted registry-side, never downloaded
  const registryOnly = outputs.specs.length > 0 && outputs.specs.every((o) => o.type === 'registry');
  const sde = process.env.SOURCE_DATE_EPOCH;
  const say = progressLine(mode, tty);
  const cache = await wireCacheIfAny(f, { store: opened.store, registry, signal, log: say });
  if (attestations.length > 0) {
    print({ type: 'warning', message: `attestations (${attestations.map((a) => a.type).join(', ')}) are not implemented by hoist yet: the image is written without them (pass --provenance=false --sbom=false to silence this)` });
  }
  const images = new StoreThenRegistry({
    store: opened.store,
    registry,
    pull: f.pull ? 'always' : 'missing',
    mirrors: [...(f.registryMirror ?? []), ...(loadConfig().registryMirrors ?? [])],
    checks: new LayerChecker(opened.store.blobs),
  });
  const t0 = Date.now();
  let result: BuildResult | MultiBuildResult;
  try {
    const buildOpts: BuildOptions = {
    store: opened.store,
    snapshotter,
    images: namedMod ? new namedMod.NamedContextSource(images, named, { store: opened.store, tmpDir: path.join(opened.root, 'tmp') }) : images,
    ...(named.length > 0 ? { namedContexts: named.map((c) => c.name) } : {}),
    root: opened.root,
    contextDir,
    dockerfile: { path: df.path, text: df.text },
    ...(df.dockerignore !== undefined ? { dockerignore: df.dockerignore } : {}),
    buildArgs: parseKeyValues(f.buildArg, '--build-arg', true),
    ...(f.target ? { target: f.target } : {}),
    ...(single ? { platform: single } : {}),
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
    ...buildx.options,
    progress: (ev: BuildEvent) => print(ev),
    remoteCaches: cache.sources,
    ...(registryOnly ? { lazyLayers: true } : {}),
    signal,
  };
    result = platforms.length > 1 ? await buildPlatforms(buildOpts, platforms) : await build(buildOpts);
  } catch (e) {
    tty?.finish('build failed');
    throw e;
  }
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  tty?.finish(`built in ${secs}s`);
  if (mode === 'json') {
    jsonEvent({ type: 'result', digest: result.descriptor.digest, tags: result.tags, seconds: Number(secs), ...result.stats });
  } else if (mode !== 'quiet') {
    say(`built ${result.descriptor.digest} in ${secs}s (${result.stats.executed} steps run, ${result.stats.cached} cached)\n`);
    for (const t of result.tags) say(`tagged ${t}\n`);
  }
  await cache.exportAll(result, signal, say);
  if (outputs.specs.length > 0) await (await import('./outputs.js')).writeBuildOutputs(outputs, { store: opened.store, snapshotter, descriptor: result.descriptor, tags: result.tags, signal, log: say, ...(mode === 'json' ? { report: (s: string) => jsonEvent({ type: 'error', message: s.trim(), exitCode: 1 }) } : {}), ...(single ? { platform: single } : {}), ...('platforms' in result ? { platforms: result.platforms.map((p) => p.platform) } : {}) });
  if (f.push || outputs.push) {
    // a lazy result is not tagged locally (its layers are not all here): push the requested tags
    const pushTags = result.tags.length > 0 ? result.tags : f.tag.map((t) => formatReference(parseReference(t)));
    for (const t of pushTags) {
      await (await registry()).push(opened.store, result.descriptor, t, { signal, mountFrom: cache.mountFrom });
      if (mode === 'json') jsonEvent({ type: 'pushed', ref: t, digest: result.descriptor.digest });
      else say(`pushed ${t}\n`);
    }
  }
  tty?.close();
  if ('platforms' in result) {
    // an index: no single image to load, no image ID; the index digest is what --push pushed
    if (!outputs.stdout) process.stdout.write(`${result.descriptor.digest}\n`);
    return 0;
  }
  if (docker && dockerMod) {
    const loaded = await dockerMod.loadIntoDocker({ endpoint: docker, store: opened.store, descriptor: result.descriptor, refs: resultNames(result, f), signal, ...(single ? { platform: single } : {}) });
    for (const l of loaded) say(`${l}\n`);
  }
  await writeResultFiles(result, f, buildx);
  // -q prints the image ID as docker/buildx do; otherwise the manifest digest (what --push pushed)
  if (!outputs.stdout) process.stdout.write(`${mode === 'quiet' ? imageId(result) : result.descriptor.digest}\n`);
  return 0;
}

/** `--platform a,b`: one or more platforms (buildx's syntax); bad ones are usage errors. */
function parsePlatforms(value: string | undefined): Platform[] {
  if (value === undefined) return [];
  const parts = value.split(',').map((s) => s.trim());
  if (parts.some((s) => s === '')) throw new UsageError(`--platform "${value}": an empty platform in the list; write e.g. linux/amd64,linux/arm64`);
  try {
    return parts.map(parsePlatform);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/**
 * A multi-platform result is an index: the single-image outputs cannot hold it (as buildx:
 * type=docker, type=tar, --load); --iidfile and --metadata-file are not written for one yet.
 */
function checkMultiPlatform(f: BuildFlags, outputs: BuildOutputs, count: number): void {
  if (count < 2) return;
  const single = outputs.specs.find((s) => s.type === 'docker' || s.type === 'tar');
  if (single) throw new UsageError(`--output type=${single.type} holds one image; a build for ${count} platforms makes an index: use type=oci, type=local (one folder per platform) or type=registry`);
  const flag = f.load ? '--load' : f.iidfile ? '--iidfile' : f.metadataFile ? '--metadata-file' : undefined;
  if (flag) throw new UsageError(`${flag} is not supported with several platforms (the result is an image index); build one --platform for it`);
}

/** The names of a result: its local tags, or (a lazy, untagged result) the requested ones. */
function resultNames(result: BuildResult, f: BuildFlags): string[] {
  return result.tags.length > 0 ? result.tags : f.tag.map((t) => formatReference(parseReference(t)));
}

/** `--iidfile` and `--metadata-file`, written last, as buildx writes them after the export. */
async function writeResultFiles(result: BuildResult, f: BuildFlags, buildx: Awaited<ReturnType<typeof buildxOptions>>): Promise<void> {
  if (f.iidfile) await writeIidFile(f.iidfile, result);
  if (f.metadataFile) await writeMetadataFile(f.metadataFile, buildMetadata(result, { names: resultNames(result, f), ...buildx.descriptorAnnotations(result.config) }));
}

/** The buildx flags parsed before the build (mistakes cost nothing): build options and what the result files need. */
async function buildxOptions(f: BuildFlags): Promise<{
  options: Pick<BuildOptions, 'labels' | 'manifestAnnotations' | 'runHost'>;
  descriptorAnnotations: (c: { os: string; architecture: string; variant?: string }) => { descriptorAnnotations?: Record<string, string> };
}> {
  const annotations = parseAnnotations(f.annotation ?? []);
  refuseIndexAnnotations(annotations);
  const platform = parsePlatforms(f.platform)[0] ?? hostPlatform();
  const labels = parseLabels(f.label ?? []);
  const runHost = parseRunHost(f);
  await checkResultFile('--iidfile', f.iidfile);
  await checkResultFile('--metadata-file', f.metadataFile);
  await clearIidFile(f.iidfile);
  const manifest = annotationsFor(annotations, 'manifest', platform);
  return {
    options: { ...(Object.keys(labels).length > 0 ? { labels } : {}), ...(manifest ? { manifestAnnotations: manifest } : {}), ...(runHost ? { runHost } : {}) },
    descriptorAnnotations: (c) => {
      const d = annotationsFor(annotations, 'manifest-descriptor', c);
      return d ? { descriptorAnnotations: d } : {};
    },
  };
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

/** One JSON progress event on stderr (`--progress=json`: nothing else goes there). */
function jsonEvent(ev: Record<string, unknown>): void {
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), ...ev }) + '\n');
}

/** A progress line: as it is (plain, tty), an `info` event (json), or nothing (quiet). */
function progressLine(mode: ProgressMode, tty?: TtyProgress): (s: string) => void {
  if (mode === 'quiet') return () => undefined;
  if (tty) return (s) => tty.print(s);
  if (mode === 'json') return (s) => s.split('\n').filter((l) => l.trim()).forEach((l) => jsonEvent({ type: 'info', message: l }));
  return (s) => process.stderr.write(s);
}

/** `--progress=json`: a failure is an `error` event (message, exit code), never plain text. */
async function jsonErrors(f: BuildFlags, fn: () => Promise<number>): Promise<number> {
  if (f.progress !== 'json' || f.quiet) return fn();
  try {
    return await fn();
  } catch (e) {
    if (e instanceof ExitError) throw e;
    const { reportError } = await import('../report.js');
    let text = '';
    const code = reportError(e, (s) => (text += s));
    jsonEvent({ type: 'error', message: text.trim().replace(/^hoist: /, ''), exitCode: code, ...(typeof (e as { code?: unknown }).code === 'string' ? { code: (e as { code: string }).code } : {}) });
    throw new ExitError(code, text.trim());
  }
}

/** The command's registry client, made (and its package loaded) on first use. */
function lazyRegistry(mode: ProgressMode, tty: TtyProgress | undefined): () => Promise<RegistryClient> {
  let client: Promise<RegistryClient> | undefined;
  return () =>
    (client ??= import('../registry.js').then((m) => m.makeRegistryClient(mode, tty ? { onTransfer: (id, text) => tty.transfer(id, text) } : {})));
}

/** `--cache-from`/`--cache-to`; without them nothing of the cache package is loaded. */
async function wireCacheIfAny(
  f: BuildFlags,
  d: { store: Parameters<typeof build>[0]['store']; registry: () => Promise<RegistryClient>; signal: AbortSignal; log: (s: string) => void },
): Promise<CacheWiring> {
  if ((f.cacheFrom ?? []).length === 0 && (f.cacheTo ?? []).length === 0) return { sources: [], mountFrom: [], exportAll: async () => undefined };
  const { wireCache } = await import('./build-cache.js');
  return wireCache(d.store, await d.registry(), f.cacheFrom ?? [], f.cacheTo ?? [], d.signal, d.log);
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
