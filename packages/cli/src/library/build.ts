import { build as solve, type BuildEvent, type BuildOptions as BuilderOptions, type BuildResult } from '@hoist/builder';
import { formatReference, parsePlatform, parseReference, type Descriptor } from '@hoist/oci';
import { LayerChecker, type Snapshotter } from '@hoist/snapshotter';
import type { RegistryClient } from '@hoist/registry-client';
import { UsageError } from '../errors.js';
import { openStore, type OpenedStore } from '../store.js';
import { StoreThenRegistry } from '../image-source.js';
import { contextDirectory, readDockerfile, type DockerfileSource } from './dockerfile.js';
import type { CacheWiring } from './cache-wiring.js';
import type { BuildOutputContext, BuildOutputs } from './outputs.js';

/** Builder options a request passes through unchanged. */
type Passed = 'buildArgs' | 'target' | 'noCache' | 'noCacheFilter' | 'format' | 'network' | 'allow' | 'seccomp' | 'jobs' | 'runtime' | 'sourceDateEpoch' | 'secrets' | 'ssh' | 'resources' | 'explainCache';

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
  /** Target platform, `os/arch[/variant]`. */
  platform?: string;
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
  onBuilt?: (result: BuildResult) => void;
  /** Called after each tag is pushed. */
  onPushed?: (ref: string) => void;
  signal?: AbortSignal;
}

/** What a build made. */
export interface BuildSummary {
  /** Digest of the image manifest (of the index for a multi-platform build). */
  digest: string;
  descriptor: Descriptor;
  /** Full references tagged in the store. */
  tags: string[];
  stats: BuildResult['stats'];
  /** References pushed. */
  pushed: string[];
  /** An output wrote an archive to stdout. */
  wroteStdout: boolean;
}

interface Wired {
  opened: OpenedStore;
  snapshotter: Snapshotter;
  outputs: BuildOutputs;
  cache: CacheWiring;
  registry: () => Promise<RegistryClient>;
  log: (line: string) => void;
  signal: AbortSignal;
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
  const result = await solve(builderOptions(req, w, { contextDir, df }));
  req.onBuilt?.(result);
  await w.cache.exportAll(result, w.signal, w.log);
  if (w.outputs.specs.length > 0) {
    const { writeBuildOutputs } = await import('./outputs.js');
    await writeBuildOutputs(w.outputs, outputContext(req, w, result));
  }
  const pushed = req.push || w.outputs.push ? await pushAll(req, w, result) : [];
  return { digest: result.descriptor.digest, descriptor: result.descriptor, tags: result.tags, stats: result.stats, pushed, wroteStdout: w.outputs.stdout };
}

/** Open the store, parse outputs, import caches; the registry client, cache and output code load only when used. */
async function wire(req: BuildRequest): Promise<Wired> {
  const outputs: BuildOutputs = req.outputs?.length ? (await import('./outputs.js')).parseBuildOutputs(req.outputs) : { specs: [], push: false, stdout: false };
  if ((req.push || outputs.push) && (req.tags ?? []).length === 0) throw new UsageError('--push and --output type=registry need at least one -t NAME:TAG');
  const opened = await openStore(req.root);
  const snapshotter = await opened.snapshotter();
  const registry = once(req.registry ?? defaultRegistry);
  const log = req.log ?? ((): void => undefined);
  const signal = req.signal ?? new AbortController().signal;
  const none: CacheWiring = { sources: [], mountFrom: [], exportAll: async () => undefined };
  const wantCache = (req.cacheFrom ?? []).length > 0 || (req.cacheTo ?? []).length > 0;
  const cache = wantCache ? await (await import('./cache-wiring.js')).wireCache(opened.store, await registry(), req.cacheFrom ?? [], req.cacheTo ?? [], signal, log) : none;
  return { opened, snapshotter, outputs, cache, registry, log, signal };
}

function builderOptions(req: BuildRequest, w: Wired, src: { contextDir: string; df: DockerfileSource }): BuilderOptions {
  const { buildArgs, target, noCache, noCacheFilter, format, network, allow, seccomp, jobs, runtime, sourceDateEpoch, secrets, ssh, resources, explainCache } = req;
  const passed = { buildArgs, target, noCache, noCacheFilter, format, network, allow, seccomp, jobs, runtime, sourceDateEpoch, secrets, ssh, resources, explainCache };
  // `--output type=registry` alone (as in buildx): nothing is kept locally, so layers that only an
  // imported cache or the base image's registry holds are mounted registry-side, never downloaded
  const registryOnly = w.outputs.specs.length > 0 && w.outputs.specs.every((o) => o.type === 'registry');
  return {
    ...(Object.fromEntries(Object.entries(passed).filter(([, v]) => v !== undefined)) as Pick<BuilderOptions, Passed>),
    store: w.opened.store,
    snapshotter: w.snapshotter,
    images: new StoreThenRegistry({
      store: w.opened.store,
      registry: w.registry,
      pull: req.pull ? 'always' : 'missing',
      mirrors: req.registryMirrors ?? [],
      checks: new LayerChecker(w.opened.store.blobs),
    }),
    root: w.opened.root,
    contextDir: src.contextDir,
    dockerfile: { path: src.df.path, text: src.df.text },
    ...(src.df.dockerignore !== undefined ? { dockerignore: src.df.dockerignore } : {}),
    ...(req.platform ? { platform: parsePlatform(req.platform) } : {}),
    tags: req.tags ?? [],
    ...(req.progress ? { progress: req.progress } : {}),
    remoteCaches: w.cache.sources,
    ...(registryOnly ? { lazyLayers: true } : {}),
    signal: w.signal,
  };
}

function outputContext(req: BuildRequest, w: Wired, result: BuildResult): BuildOutputContext {
  return {
    store: w.opened.store,
    snapshotter: w.snapshotter,
    descriptor: result.descriptor,
    tags: result.tags,
    signal: w.signal,
    log: w.log,
    ...(req.platform ? { platform: parsePlatform(req.platform) } : {}),
    ...(req.sourceDateEpoch !== undefined ? { sourceDateEpoch: req.sourceDateEpoch } : {}),
  };
}

async function pushAll(req: BuildRequest, w: Wired, result: BuildResult): Promise<string[]> {
  // a lazy result is not tagged locally (its layers are not all here): push the requested tags
  const refs = result.tags.length > 0 ? result.tags : (req.tags ?? []).map((t) => formatReference(parseReference(t)));
  for (const ref of refs) {
    await (await w.registry()).push(w.opened.store, result.descriptor, ref, { signal: w.signal, mountFrom: w.cache.mountFrom });
    req.onPushed?.(ref);
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
