import type { CacheRecord, Descriptor, ImageConfig, ImageStore, Layer, LayerProvider, Manifest, Parsed, Platform } from '@hoist/oci';
import type { Snapshotter } from '@hoist/snapshotter';
import type { Entitlement } from './sandbox/entitlements.js';
import type { DefaultNetwork } from './sandbox/network.js';
import type { SeccompSetting } from './sandbox/seccomp.js';
import type { CacheStore } from './cache.js';
import type { Executor } from './executor.js';
import type { EmulationHost } from './sandbox/emulation.js';
import type { RunHostOptions } from './run-flags.js';

/** A base image, resolved: manifest and config are in the store; layer blobs may not be yet. */
export interface ResolvedImage {
  ref: string;
  descriptor: Descriptor;
  manifest: Parsed<Manifest>;
  config: Parsed<ImageConfig>;
  /**
   * One per manifest layer, in order: where each blob is (the store, or lazily the registry it
   * was resolved from). The builder fetches a layer only when a step runs on it.
   */
  layers: readonly Layer[];
}

/** Where base images come from (local store, registry, OCI layout): wired by the CLI. */
export interface ImageSource {
  resolve(ref: string, opts: { platform: Platform; signal?: AbortSignal }): Promise<ResolvedImage>;
}

export type BuildEvent =
  | { type: 'plan'; stages: Array<{ index: number; name?: string; steps: number }>; target: number }
  | { type: 'step'; id: string; label: string; status: 'start' | 'cached' | 'done' | 'error'; ms?: number }
  | { type: 'log'; id: string; stream: 'stdout' | 'stderr'; data: string }
  | { type: 'warning'; message: string; line?: number; rule?: string; url?: string }
  | { type: 'info'; message: string };

/**
 * A cache imported from elsewhere (a registry or an OCI layout; `--cache-from`). Records are
 * looked up after the local cache; their layer blobs are fetched only when a step really
 * needs them (to run on top of, or to export), never just because a step hit.
 */
export interface RemoteCache extends LayerProvider {
  get(key: string): Promise<CacheRecord | undefined>;
  /** Bring one layer blob into the local store. */
  fetchLayer(desc: Descriptor, opts: { signal?: AbortSignal }): Promise<void>;
  /** Whether this cache can provide a blob. */
  hasLayer(desc: Descriptor): boolean;
  /** Records cached on top of a parent key (to explain a miss against an imported cache). */
  children?(parent: string): CacheRecord[];
  /**
   * The exported contents of a cache mount, by mount key: layers applied in order into an empty
   * directory (fetched with fetchLayer only when a RUN that mounts it runs).
   */
  mountLayers?(key: string): { layers: Descriptor[]; files: number; bytes: number } | undefined;
}

/** @deprecated The cache record is @hoist/oci's `CacheRecord`; this name stays for older imports. */
export type CacheRecordLike = CacheRecord;

export interface Secret {
  id: string;
  /** The secret's bytes. */
  data: Buffer;
}

/** An SSH agent socket that `RUN --mount=type=ssh,id=ID` may use (`--ssh ID=SOCKET`). */
export interface SshAgent {
  id: string;
  socket: string;
}

/**
 * What build() and buildPlatforms() take: the snapshotter may still be opening (on a new store
 * it probes overlayfs, a mount and an unmount), so that the base images resolve meanwhile.
 */
export type BuildInput = Omit<BuildOptions, 'snapshotter'> & { snapshotter: Snapshotter | Promise<Snapshotter> };

export interface BuildOptions {
  store: ImageStore;
  snapshotter: Snapshotter;
  images: ImageSource;
  /** Runs RUN steps' processes; the OCI runtime (`runtime`) by default. */
  executor?: Executor;
  /** Cache records; files under `<root>/cache` by default. */
  cache?: CacheStore;
  /** Root of hoist's store (cache records, runtime state, temp files live below it). */
  root: string;
  contextDir: string;
  dockerfile: { path: string; text: string };
  /** Text of the .dockerignore that applies, if any. */
  dockerignore?: string;
  buildArgs?: Record<string, string>;
  target?: string;
  platform?: Platform;
  /** The host's emulation facts (emulators, binfmt_misc); detected when unset (tests inject them). */
  emulationHost?: EmulationHost;
  tags?: string[];
  noCache?: boolean;
  noCacheFilter?: string[];
  format?: 'oci' | 'docker';
  /**
   * RUN's network unless it says `--network=…`: `default` (also when unset) is its own network
   * namespace with outbound access and no host loopback; `host` shares the host's (and allows
   * RUN --network=host); `none` has only loopback.
   */
  network?: DefaultNetwork;
  /** Entitlements the caller grants (`--allow`): RUN --network=host, RUN --security=insecure. */
  allow?: Entitlement[];
  /** The seccomp filter of RUN steps (`--security-opt seccomp=…`); insecure RUNs have none. */
  seccomp?: SeccompSetting;
  jobs?: number;
  runtime?: string;
  sourceDateEpoch?: number;
  secrets?: Secret[];
  /** SSH agents for RUN --mount=type=ssh (`--ssh default`). */
  ssh?: SshAgent[];
  /** Explain each cache miss: which input changed compared with the nearest cached step. */
  explainCache?: boolean;
  resources?: { memoryBytes?: number; cpus?: number; pidsLimit?: number };
  /** `--add-host`, `--shm-size`, `--ulimit`: every RUN's /etc/hosts, /dev/shm and rlimits. */
  runHost?: RunHostOptions;
  /**
   * Names of named build contexts (`--build-context NAME=…`): the `images` source resolves them;
   * a stage of the same name is overridden, as in BuildKit.
   */
  namedContexts?: string[];
  /** `--label K=V`: labels set on the final image's config (after the Dockerfile's own). */
  labels?: Record<string, string>;
  /** `--annotation manifest:K=V`: annotations of the image manifest. */
  manifestAnnotations?: Record<string, string>;
  progress?: (ev: BuildEvent) => void;
  signal?: AbortSignal;
  /** Imported caches (`--cache-from`), consulted after the local cache. */
  remoteCaches?: RemoteCache[];
  /**
   * Keep layer blobs that are only in a remote cache remote (no download) in the result: for
   * outputs that do not need them locally (a push that can mount them registry-side).
   */
  lazyLayers?: boolean;
}

export interface BuildResult {
  descriptor: Descriptor;
  manifest: Manifest;
  config: ImageConfig;
  tags: string[];
  /** Steps that ran vs were cached, for summaries and tests. */
  stats: { executed: number; cached: number; runSteps: number; layersFetched: number };
  /**
   * Cache records for `--cache-to`: `min`, those of the final image's layers (target stage and
   * the stages it is built FROM); `max`, those of every stage the target needs.
   */
  cacheRecords: { min: CacheRecord[]; max: CacheRecord[] };
  /**
   * The image's layers, wherever each blob is (all in the store unless `lazyLayers`): what a push
   * or an output reads them from.
   */
  layers: Layer[];
  /** Layer blobs of the result that are not in the local store (only with `lazyLayers`). */
  remoteLayers: Descriptor[];
  /** The cache mounts (`RUN --mount=type=cache`) steps of this build used: key and directory. */
  cacheMounts?: Array<{ key: string; dir: string }>;
}
