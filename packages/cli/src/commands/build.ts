import * as path from 'node:path';
import { parseCpus, parseMemory, parsePidsLimit, parseSsh, type BuildOptions, type BuildResult, type MultiBuildResult } from '@hoist/builder';
import { hostPlatform } from '@hoist/oci';
import type { RegistryClient } from '@hoist/registry-client';
import { ExitError, UsageError } from '../errors.js';
import { prepareContext } from '../build-context.js';
import { planAttestations } from '../attest-flags.js';
import { plainPrinter, type ProgressMode } from '../progress.js';
import { parseAllow, parseKeyValues, parseSecurityOpts, readSecrets } from '../args.js';
import type { TtyProgress } from '../tty-progress.js';
import { loadConfig } from '../config.js';
import { build, resultNames, type BuildRequest, type BuildSummary } from '../library/build.js';
import { readDockerfile, type DockerfileSource } from '../library/dockerfile.js';
import { parsePlatforms } from '../library/wiring.js';
import { checkCommand, parseCall } from './check.js';
import { annotationsFor, parseAnnotations, parseLabels, parseRunHost, refuseIndexAnnotations } from '../buildx-flags.js';
import { buildMetadata, checkResultFile, clearIidFile, imageId, indexMetadata, writeIidFile, writeMetadataFile } from './build-result.js';

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
  /** `--attest`, `--provenance`, `--sbom` (buildx's syntax; see attest-flags.ts). */
  attest?: string[];
  provenance?: string;
  sbom?: string;
  /** `--load`: into the Docker daemon (DOCKER_HOST or /var/run/docker.sock). */
  load?: boolean;
  /** `--build-context NAME=DIR|docker-image://REF|oci-layout://PATH[:TAG]|GIT-URL`. */
  buildContext?: string[];
}

export async function buildCommand(context: string, f: BuildFlags, signal: AbortSignal): Promise<number> {
  const call = parseCall(f.call, f.check);
  const prepared = await prepareContext(context, { dockerfileFromStdin: f.file === '-', signal });
  try {
    return await jsonErrors(f, async () => {
      const df = prepared.dockerfileText !== undefined ? { path: '-', text: prepared.dockerfileText } : await readDockerfile(prepared.dir, prepared.unpacked && f.file && f.file !== '-' && !path.isAbsolute(f.file) ? path.join(prepared.dir, f.file) : f.file);
      if (call.name === 'check') return await checkCommand(df, f, call);
      return await buildIn({ dir: prepared.dir, ...(prepared.source ? { source: prepared.source } : {}) }, df, f, signal);
    });
  } finally {
    await prepared.cleanup();
  }
}

/** `hoist build`: flags → a {@link BuildRequest} → the library's build → lines on stderr, the digest on stdout. */
async function buildIn(context: { dir: string; source?: { uri: string; digest: Record<string, string> } }, df: DockerfileSource, f: BuildFlags, signal: AbortSignal): Promise<number> {
  const contextDir = context.dir;
  const mode: ProgressMode = f.quiet ? 'quiet' : f.progress === 'auto' ? (process.stderr.isTTY ? 'tty' : 'plain') : f.progress;
  // the renderer and the registry client load only when used (cache and output code: see the library)
  const tty = mode === 'tty' ? new (await import('../tty-progress.js')).TtyProgress(process.stderr) : undefined;
  const print = tty ? tty.onEvent : plainPrinter((s) => process.stderr.write(s), mode);
  const say = progressLine(mode, tty);
  const buildx = await buildxOptions(f);
  const request: BuildRequest = {
    ...(await requestFromFlags(contextDir, df, f, buildx.options)),
    attestations: planAttestations(f),
    ...(context.source ? { contextSource: context.source } : {}),
    manifestDescriptorAnnotations: (p) => buildx.descriptorAnnotations(p).descriptorAnnotations,
  };
  const t0 = Date.now();
  let built = false;
  let r: BuildSummary;
  try {
    r = await build({
      ...request,
      registry: lazyRegistry(mode, tty),
      progress: print,
      log: say,
      onBuilt: (result) => {
        built = true;
        printBuilt(result, mode, ((Date.now() - t0) / 1000).toFixed(1), { tty, say });
      },
      onPushed: (ref, digest) => (mode === 'json' ? jsonEvent({ type: 'pushed', ref, digest }) : say(`pushed ${ref}\n`)),
      signal,
    });
  } catch (e) {
    if (!built) tty?.finish('build failed');
    // output errors are reported as the other output commands report them
    if (e instanceof Error && e.name === 'ExportError') return (await import('./outputs.js')).exportErrors(() => Promise.reject(e), mode === 'json' ? (s: string) => jsonEvent({ type: 'error', message: s.trim(), exitCode: 1 }) : undefined);
    throw e;
  }
  tty?.close();
  const result = r.result;
  // an index: its digest is the ID (-q, --iidfile) and what --push pushed
  if ('platforms' in result) {
    // with attestations the index that was pushed/written is the attested one (BuildKit's layout)
    await writeIndexFiles(r.attested ? { ...result, descriptor: r.attested } : result, f);
    if (!r.wroteStdout) process.stdout.write(`${r.digest}\n`);
    return 0;
  }
  await writeResultFiles(result, f, { ...buildx, attested: r.attested });
  // -q prints the image ID as docker/buildx do; otherwise the manifest digest (what --push pushed)
  if (!r.wroteStdout) process.stdout.write(`${mode === 'quiet' ? imageId(result) : r.digest}\n`);
  return 0;
}

/** The summary after the build: `built DIGEST in Ns (…)` and the tags (a JSON record with --progress=json). */
function printBuilt(result: BuildResult | MultiBuildResult, mode: ProgressMode, secs: string, o: { tty: TtyProgress | undefined; say: (s: string) => void }): void {
  o.tty?.finish(`built in ${secs}s`);
  if (mode === 'json') {
    jsonEvent({ type: 'result', digest: result.descriptor.digest, tags: result.tags, seconds: Number(secs), ...result.stats });
  } else if (mode !== 'quiet') {
    o.say(`built ${result.descriptor.digest} in ${secs}s (${result.stats.executed} steps run, ${result.stats.cached} cached)\n`);
    for (const t of result.tags) o.say(`tagged ${t}\n`);
  }
}

/** The flags as a build request; bad values are usage errors. */
async function requestFromFlags(contextDir: string, df: DockerfileSource, f: BuildFlags, buildx: BuildxBuildOptions): Promise<BuildRequest> {
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
    context: contextDir,
    dockerfile: df,
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
    ...(f.load ? { load: true } : {}),
    ...(f.buildContext?.length ? { buildContexts: f.buildContext } : {}),
    ...(f.isolation ? { isolation: f.isolation } : {}),
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
    ...buildx,
  };
}

/** `--iidfile` and `--metadata-file`, written last, as buildx writes them after the export. */
async function writeResultFiles(result: BuildResult, f: BuildFlags, buildx: Awaited<ReturnType<typeof buildxOptions>> & { attested: BuildSummary['attested'] }): Promise<void> {
  if (f.iidfile) await writeIidFile(f.iidfile, result);
  const names = resultNames({ tags: f.tag }, result);
  if (f.metadataFile) await writeMetadataFile(f.metadataFile, buildMetadata(result, { names, ...(buildx.attested ? { attested: buildx.attested } : buildx.descriptorAnnotations(result.config)) }));
}

/** `--iidfile` and `--metadata-file` of a multi-platform build: the index's digest and descriptor. */
async function writeIndexFiles(result: MultiBuildResult, f: BuildFlags): Promise<void> {
  if (f.iidfile) await writeIidFile(f.iidfile, result);
  if (f.metadataFile) await writeMetadataFile(f.metadataFile, indexMetadata(result, { names: resultNames({ tags: f.tag }, result) }));
}

/** The buildx flags parsed before the build (mistakes cost nothing): build options and what the result files need. */
type BuildxBuildOptions = Pick<BuildOptions, 'labels' | 'manifestAnnotations' | 'runHost'>;

async function buildxOptions(f: BuildFlags): Promise<{
  options: BuildxBuildOptions;
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

/** The command's registry client (progress on stderr), made and its package loaded on first use. */
function lazyRegistry(mode: ProgressMode, tty: TtyProgress | undefined): () => Promise<RegistryClient> {
  return () => import('../registry.js').then((m) => m.makeRegistryClient(mode, tty ? { onTransfer: (id, text) => tty.transfer(id, text) } : {}));
}
