import { build as solve, buildPlatforms, type BuildEvent, type BuildInput, type BuildOptions as BuilderOptions, type BuildResult, type ImageSource, type MultiBuildResult } from '@hoist/builder';
import { formatReference, parseReference, storePaths, type Descriptor, type Platform } from '@hoist/oci';
import { LayerChecker, type DownloadUnpacker, type Snapshotter } from '@hoist/snapshotter';
import type { RegistryClient } from '@hoist/registry-client';
import { UsageError } from '../errors.js';
import { openStore, type OpenedStore } from '../store.js';
import { StoreThenRegistry } from '../image-source.js';
import { contextDirectory, readDockerfile, type DockerfileSource } from './dockerfile.js';
import type { CacheWiring } from './cache-wiring.js';
import type { BuildOutputContext, BuildOutputs } from './outputs.js';
import type { DockerEndpoint, loadIntoDocker } from '../docker-load.js';
import { checkMultiPlatform, isolationWiring, parsePlatforms } from './wiring.js';
import type { AttestationPlan } from '../attest-flags.js';
import type { RecordingImageSource } from './attestations.js';
import type { NamedContext } from '../named-contexts.js';

type NamedContextsModule = typeof import('../named-contexts.js');
import type { AttestedImage } from '@hoist/exporter';

/** Builder options a request passes through unchanged. */
type Passed = 'buildArgs' | 'target' | 'noCache' | 'noCacheFilter' | 'format' | 'network' | 'allow' | 'seccomp' | 'jobs' | 'runtime' | 'sourceDateEpoch' | 'secrets' | 'ssh' | 'resources' | 'explainCache' | 'labels' | 'manifestAnnotations' | 'runHost' | 'executor';

/** What to build and where the result goes: `hoist build`'s flags as an object. */
export interface BuildRequest extends Pick<BuilderOptions, Passed> {
  /** The build context directory. */
  context: string;
  /** The Dockerfile: a path (default `<context>/Dockerfile`), or its text with the path shown in messages. */
  dockerfile?: string | DockerfileSource;
  /** The store root (`--root`); default as the `hoist` command finds it (see {@link storeRoot}). */
  root?: string;
  /** Names to tag the image with in the store (and to push to). */
  tags?: string[];
  /** Target platform, `os/arch[/variant]`; several, comma-separated, build an image index. */
  platform?: string;
  /** Extra build contexts (`--build-context`): `NAME=DIR`, `NAME=docker-image://REF`, `NAME=oci-layout://PATH[:TAG]`, `NAME=GIT-URL`. */
  buildContexts?: string[];
  /** How RUN steps are isolated (`--isolation`): `auto` (default, or `$HOIST_ISOLATION`), `oci`, `rootless`, `proot`. */
  isolation?: string;
  /** Load the image into the Docker daemon (`--load`; DOCKER_HOST or /var/run/docker.sock). */
  load?: boolean;
  /** Push every tag after the build (`--push`). */
  push?: boolean;
  /** Outputs in `--output` syntax: `type=oci,dest=FILE`, `type=local,dest=DIR`, `type=registry`, … */
  outputs?: string[];
  /** Build caches to import, `type=registry,ref=REF` or `type=local,src=DIR` (`--cache-from`). */
  cacheFrom?: string[];
  /** Build caches to export, `type=registry,ref=REF[,mode=max]` or `type=local,dest=DIR` (`--cache-to`). */
  cacheTo?: string[];
  /** Pull base images even when the store has them (`--pull`). */
  pull?: boolean;
  /** Registry mirrors for docker.io, tried in order. */
  registryMirrors?: string[];
  /** The registry client, made on first use; default: one with the Docker credentials of this user. */
  registry?: () => Promise<RegistryClient>;
  /** Build progress: steps starting, cached, done; their output. */
  progress?: (ev: BuildEvent) => void;
  /** Lines about cache imports/exports and outputs written. */
  log?: (line: string) => void;
  /** Called once the image is built, before caches are exported, outputs written and tags pushed. */
  onBuilt?: (result: BuildResult | MultiBuildResult) => void;
  /**
   * Attestations (`--provenance`, `--sbom`; see {@link AttestationPlan}), attached when an
   * output can hold them: a push or an OCI layout. Default: none.
   */
  attestations?: AttestationPlan;
  /** A git or http(s) URL context: its URL and the digest of what was fetched (the provenance's config source and a resolved dependency). */
  contextSource?: { uri: string; digest: Record<string, string> };
  /** `--annotation manifest-descriptor:…`: on each image's entry of the attested index. */
  manifestDescriptorAnnotations?: (p: Platform) => Record<string, string> | undefined;
  /** Called after each tag is pushed. */
  onPushed?: (ref: string, digest: string) => void;
  signal?: AbortSignal;
}

/** What a build made. */
export interface BuildSummary {
  /** Digest of the image manifest (of the index for a multi-platform build or one with attestations). */
  digest: string;
  /** The index with the attestations, when the build attached some (what was pushed / written). */
  attested?: Descriptor;
  descriptor: Descriptor;
  /** Full references tagged in the store. */
  tags: string[];
  stats: BuildResult['stats'];
  /** References pushed. */
  pushed: string[];
  /** An output wrote an archive to stdout. */
  wroteStdout: boolean;
  /** The builder's result: one image, or (several platforms) an index with its `platforms`. */
  result: BuildResult | MultiBuildResult;
}

interface Wired {
  opened: OpenedStore;
  snapshotter: Promise<Snapshotter>;
  outputs: BuildOutputs;
  cache: CacheWiring;
  registry: () => Promise<RegistryClient>;
  log: (line: string) => void;
  signal: AbortSignal;
  platforms: Platform[];
  images: ImageSource;
  /** The base images resolved (for the provenance), when attestations are wanted. */
  recorder?: RecordingImageSource;
  namedContexts: string[];
  docker?: { endpoint: DockerEndpoint; load: typeof loadIntoDocker };
}

/**
 * Build an image from a Dockerfile the way `hoist build` does: base images from the store or
 * their registry, build caches imported and exported, outputs written, tags pushed.
 *
 * @example
 * const r = await build({ context: 'fixtures/hello', tags: ['hello:1'] });
 * console.log(r.digest);
 */
export async function build(req: BuildRequest): Promise<BuildSummary> {
  const contextDir = await contextDirectory(req.context);
  const df = typeof req.dockerfile === 'object' ? req.dockerfile : await readDockerfile(contextDir, req.dockerfile);
  const w = await wire(req);
  return whileOpening(w.snapshotter, () => buildWired(req, w, { contextDir, df }));
}

/** build() once wired: the build, its caches, attestations, outputs, pushes and loads. */
async function buildWired(req: BuildRequest, w: Wired, src: { contextDir: string; df: DockerfileSource }): Promise<BuildSummary> {
  const { contextDir, df } = src;
  const opts = builderOptions(req, w, { contextDir, df });
  const startedOn = new Date();
  const result = w.platforms.length > 1 ? await buildPlatforms(opts, w.platforms) : await solve(opts);
  req.onBuilt?.(result);
  await w.cache.exportAll(result, w.signal, w.log);
  const att = await attest(req, w, result, { contextDir, df, startedOn });
  const attested = att?.index;
  if (w.outputs.specs.length > 0) {
    const { writeBuildOutputs } = await import('./outputs.js');
    await writeBuildOutputs(w.outputs, { ...(await outputContext(req, w, result)), ...(attested ? { attested } : {}), ...(att?.local ? { localAttestations: att.images } : {}) });
  }
  const pushed = req.push || w.outputs.push ? await pushAll(req, w, result, attested ?? result.descriptor) : [];
  if (w.docker && !('platforms' in result)) {
    const loaded = await w.docker.load({ endpoint: w.docker.endpoint, store: w.opened.store, descriptor: result.descriptor, refs: resultNames(req, result), signal: w.signal, ...(w.platforms[0] ? { platform: w.platforms[0] } : {}) });
    for (const l of loaded) w.log(`${l}\n`);
  }
  const top = attested ?? result.descriptor;
  return { digest: top.digest, descriptor: top, ...(attested ? { attested } : {}), tags: result.tags, stats: result.stats, pushed, wroteStdout: w.outputs.stdout, result };
}

/** Whether an output of the build can hold attestations (as in buildx: a registry push or an OCI layout). */
function holdsAttestations(req: BuildRequest, outputs: BuildOutputs): boolean {
  return !!req.push || outputs.push || outputs.specs.some((o) => o.type === 'oci');
}

/** Whether `type=local` outputs get attestation files: only when asked for explicitly. */
function localAttestations(req: BuildRequest, outputs: BuildOutputs): boolean {
  return !!req.attestations && !req.attestations.defaultOnly && outputs.specs.some((o) => o.type === 'local');
}

/** Whether the build makes attestations at all: some are wanted and an output can take them. */
function attesting(req: BuildRequest, outputs: BuildOutputs): boolean {
  const plan = req.attestations;
  return !!plan && !!(plan.provenance || plan.sbom) && (holdsAttestations(req, outputs) || localAttestations(req, outputs));
}

/**
 * The attestations of the build: the attested index (stored) when an output can hold it; the
 * statements for `type=local` outputs too when they were asked for explicitly (BuildKit writes
 * them as files next to the root filesystem; buildx's default alone writes none there).
 */
async function attest(req: BuildRequest, w: Wired, result: BuildResult | MultiBuildResult, src: { contextDir: string; df: DockerfileSource; startedOn: Date }): Promise<{ index?: Descriptor; images: AttestedImage[]; local: boolean } | undefined> {
  const plan = req.attestations;
  const holds = holdsAttestations(req, w.outputs);
  const local = localAttestations(req, w.outputs);
  if (!plan || !attesting(req, w.outputs)) return undefined;
  const { attestedImages, attachAttestations } = await import('./attestations.js');
  const images = await attestedImages({
    plan,
    store: w.opened.store,
    names: resultNames(req, result),
    contextDir: src.contextDir,
    dockerfile: { path: src.df.path, text: src.df.text },
    buildArgs: req.buildArgs ?? {},
    labels: req.labels ?? {},
    ...(req.target ? { target: req.target } : {}),
    namedContexts: w.namedContexts,
    secrets: (req.secrets ?? []).map((x) => x.id),
    ssh: (req.ssh ?? []).map((x) => x.id),
    network: req.network ?? 'default',
    dependencies: [...(w.recorder?.resolved.values() ?? [])],
    ...(req.manifestDescriptorAnnotations ? { descriptorAnnotations: req.manifestDescriptorAnnotations } : {}),
    ...(req.contextSource ? { contextSource: req.contextSource } : {}),
    startedOn: src.startedOn,
    finishedOn: new Date(),
    ...(req.sourceDateEpoch !== undefined ? { sourceDateEpoch: req.sourceDateEpoch } : {}),
    signal: w.signal,
  }, result, w.platforms);
  return { images, local, ...(holds ? { index: await attachAttestations(w.opened.store, images) } : {}) };
}

/** Open the store, parse outputs, import caches; the registry client, cache and output code load only when used. */
async function wire(req: BuildRequest): Promise<Wired> {
  const outputs: BuildOutputs = req.outputs?.length ? (await import('./outputs.js')).parseBuildOutputs(req.outputs) : { specs: [], push: false, stdout: false };
  const platforms = parsePlatforms(req.platform);
  checkMultiPlatform(outputs, platforms.length, !!req.load);
  if ((req.push || outputs.push) && (req.tags ?? []).length === 0) throw new UsageError('--push and --output type=registry need at least one -t NAME:TAG');
  // loaded only when used (a plain build loads neither the Docker client nor the context importer)
  const dockerMod = req.load ? await import('../docker-load.js') : undefined;
  const docker = dockerMod ? { endpoint: dockerMod.requireDockerEndpoint(), load: dockerMod.loadIntoDocker } : undefined;
  const namedMod = req.buildContexts?.length ? await import('../named-contexts.js') : undefined;
  const named = namedMod ? await namedMod.parseBuildContexts(req.buildContexts ?? []) : [];
  const opened = await openStore(req.root);
  // not awaited here: the builder resolves the base images while it opens (a new store probes overlayfs)
  const snapshotter = opened.snapshotter();
  return whileOpening(snapshotter, () => wireSources(req, { opened, snapshotter, outputs, platforms, named, namedMod, docker }));
}

/** The rest of wire(): registry, caches, base image sources (nothing here waits for the snapshotter). */
async function wireSources(req: BuildRequest, o: Pick<Wired, 'opened' | 'snapshotter' | 'outputs' | 'platforms' | 'docker'> & { named: NamedContext[]; namedMod: NamedContextsModule | undefined }): Promise<Wired> {
  const { opened, snapshotter, outputs, platforms, named, namedMod, docker } = o;
  const registry = once(req.registry ?? defaultRegistry);
  const log = req.log ?? ((): void => undefined);
  const signal = req.signal ?? new AbortController().signal;
  const none: CacheWiring = { sources: [], mountFrom: [], exportAll: async () => undefined };
  const wantCache = (req.cacheFrom ?? []).length > 0 || (req.cacheTo ?? []).length > 0;
  const cache = wantCache ? await (await import('./cache-wiring.js')).wireCache(opened.store, await registry(), req.cacheFrom ?? [], req.cacheTo ?? [], signal, log) : none;
  const store = new StoreThenRegistry({
    store: opened.store,
    registry,
    pull: req.pull ? 'always' : 'missing',
    mirrors: req.registryMirrors ?? [],
    // a base layer a step waits for is unpacked while it downloads
    checks: new LayerChecker(opened.store.blobs, {}, unpackerOf(snapshotter)),
  });
  // the recorder sees registry and store images (also docker-image:// contexts, by their real
  // reference), not directory or layout contexts: those are no image dependencies
  // the attestation code loads only for a build that makes attestations (issue 16: a plain
  // build to the local store, cached or not, makes none)
  const recorder = attesting(req, outputs) ? new (await import('./attestations.js')).RecordingImageSource(store) : undefined;
  const bases = recorder ?? store;
  const images = namedMod ? new namedMod.NamedContextSource(bases, named, { store: opened.store, scratchDir: storePaths(opened.root).tmp }) : bases;
  return { opened, snapshotter, outputs, cache, registry, log, signal, platforms, images, ...(recorder ? { recorder } : {}), namedContexts: named.map((c) => c.name), ...(docker ? { docker } : {}) };
}

/**
 * Run `work` while the snapshotter opens (not awaited by wire(): the base images resolve
 * meanwhile). When `work` fails, the opening is waited for before the error goes up: a new
 * store's overlay probe mounts and unmounts, and must not run on while the command exits.
 */
async function whileOpening<T>(snapshotter: Promise<Snapshotter>, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    await snapshotter.then(
      () => undefined,
      () => undefined,
    );
    throw e;
  }
}

/**
 * The snapshotter as the download checks' unpacker before it has opened: only a layer that the
 * snapshotter itself waits for is unpacked while it downloads, so until it is open there is none.
 */
function unpackerOf(snapshotter: Promise<Snapshotter>): DownloadUnpacker {
  let open: Snapshotter | undefined;
  snapshotter.then((s) => (open = s), () => undefined);
  return { unpackFrom: (layer, diffId, src) => open?.unpackFrom(layer, diffId, src) };
}

function builderOptions(req: BuildRequest, w: Wired, src: { contextDir: string; df: DockerfileSource }): BuildInput {
  const { buildArgs, target, noCache, noCacheFilter, format, allow, seccomp, jobs, runtime, sourceDateEpoch, secrets, ssh, resources, explainCache, labels, manifestAnnotations, runHost } = req;
  const isolated = isolationWiring(req.isolation, { network: req.network ?? 'default', resources, root: w.opened.root });
  const executor = isolated.executor ?? req.executor;
  const passed = { buildArgs, target, noCache, noCacheFilter, format, network: isolated.network, allow, seccomp, jobs, runtime, sourceDateEpoch, secrets, ssh, resources, explainCache, labels, manifestAnnotations, runHost, executor };
  // `--output type=registry` alone (as in buildx): nothing is kept locally, so layers that only an
  // imported cache or the base image's registry holds are mounted registry-side, never downloaded
  // (an SBOM reads every layer: it keeps them local)
  const registryOnly = w.outputs.specs.length > 0 && w.outputs.specs.every((o) => o.type === 'registry') && !req.attestations?.sbom;
  return {
    ...(Object.fromEntries(Object.entries(passed).filter(([, v]) => v !== undefined)) as Pick<BuilderOptions, Passed>),
    store: w.opened.store,
    snapshotter: w.snapshotter,
    images: w.images,
    ...(w.namedContexts.length > 0 ? { namedContexts: w.namedContexts } : {}),
    root: w.opened.root,
    contextDir: src.contextDir,
    dockerfile: { path: src.df.path, text: src.df.text },
    ...(src.df.dockerignore !== undefined ? { dockerignore: src.df.dockerignore } : {}),
    ...(w.platforms.length === 1 ? { platform: w.platforms[0]! } : {}),
    tags: req.tags ?? [],
    ...(req.progress ? { progress: req.progress } : {}),
    remoteCaches: w.cache.sources,
    ...(registryOnly ? { lazyLayers: true } : {}),
    signal: w.signal,
  };
}

async function outputContext(req: BuildRequest, w: Wired, result: BuildResult | MultiBuildResult): Promise<BuildOutputContext> {
  return {
    store: w.opened.store,
    snapshotter: await w.snapshotter,
    descriptor: result.descriptor,
    layers: result.layers,
    tags: result.tags,
    signal: w.signal,
    log: w.log,
    ...(w.platforms.length === 1 ? { platform: w.platforms[0]! } : {}),
    ...('platforms' in result ? { platforms: result.platforms.map((p) => p.platform) } : {}),
    ...(req.sourceDateEpoch !== undefined ? { sourceDateEpoch: req.sourceDateEpoch } : {}),
  };
}

/** The names of a result: its local tags, or (a lazy, untagged result) the requested ones. */
export function resultNames(req: Pick<BuildRequest, 'tags'>, result: Pick<BuildResult, 'tags'>): string[] {
  return result.tags.length > 0 ? result.tags : (req.tags ?? []).map((t) => formatReference(parseReference(t)));
}

async function pushAll(req: BuildRequest, w: Wired, result: BuildResult | MultiBuildResult, top: Descriptor): Promise<string[]> {
  // a lazy result is not tagged locally (its layers are not all here): push the requested tags
  const refs = resultNames(req, result);
  for (const ref of refs) {
    // the layers say where each blob is: a lazy result's come from the base's registry or a cache
    await (await w.registry()).push(w.opened.store, top, ref, { signal: w.signal, mountFrom: w.cache.mountFrom, layers: result.layers });
    req.onPushed?.(ref, top.digest);
  }
  return refs;
}

/** A client with the Docker credentials of this user (`~/.docker/config.json`, credential helpers). */
async function defaultRegistry(): Promise<RegistryClient> {
  const { RegistryClient, loadCredentials } = await import('@hoist/registry-client');
  return new RegistryClient({ credentials: loadCredentials() });
}

/** `make`, called at most once. */
function once<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => (made ??= make());
}
