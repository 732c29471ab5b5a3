import pLimit, { type LimitFunction } from 'p-limit';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { availableParallelism } from 'node:os';
import type { Digest, Image, Platform } from '@hoist/oci';
import type { Plan, Step } from '@hoist/parser';
import { CacheStore, type CacheRecord } from './cache.js';
import type { Descriptor } from '@hoist/oci';
import { detectRuntime, type RuntimeInfo } from './sandbox/runtime.js';
import { SandboxSession } from './sandbox/session.js';
import type { BuildEvent, BuildOptions, RemoteCache, ResolvedImage } from './types.js';
import type { PathFilter } from './sources.js';
import { CacheMounts } from './cache-mounts.js';
import { sandboxResolvConf } from './sandbox/network.js';
import type { PreparedCopy } from './copy-step.js';
import { StatCache } from './stat-cache.js';

/** What one stage has produced so far. */
export interface StageState {
  img: Image;
  /** Cache key of the root filesystem so far (base + every layer step). */
  key: string;
  /** Time of the newest layer (for metadata history entries). */
  lastCreated: string;
  cmdSet: boolean;
  /**
   * Set in pass 1 when a step (or the base stage) has no cache record: the stage must run.
   * `readsFrom` lists stages that its missing steps read (COPY --from, RUN --mount from=).
   */
  incomplete?: boolean;
  readsFrom?: number[];
  /**
   * The cache records of the layers this stage's steps (and the stages it is built FROM) added,
   * in order: in pass 1 only those found in a cache. `--cache-to mode=min` exports the target's.
   */
  records: CacheRecord[];
}

/** Everything shared by the stages of one build; owned by `build()`, never global. */
export class BuildContext {
  readonly cache: CacheStore;
  readonly limit: LimitFunction;
  readonly stageResults = new Map<number, Promise<StageState>>();
  /** Pass 1 (keys only, nothing executed): each stage's key chain and whether it is complete. */
  readonly keyResults = new Map<number, Promise<StageState>>();
  /** COPY/ADD sources selected in pass 1, by step id, reused by pass 2 (released at the end). */
  readonly preparedCopies = new Map<string, PreparedCopy>();
  readonly bases = new Map<string, ResolvedImage>();
  readonly stats = { executed: 0, cached: 0, runSteps: 0, layersFetched: 0 };
  /** RUN --mount=type=cache directories and their sharing locks. */
  readonly cacheMounts: CacheMounts;
  /** Watchdog and private tmpfs (bundles, secrets) of this build's RUN sandboxes. */
  readonly sandbox: SandboxSession;
  /** Digests of unchanged context files, from the store's stat cache (read once, saved at the end). */
  readonly fileDigests: StatCache;
  private runtimeInfo: RuntimeInfo | undefined;
  private etcFiles: { hosts: string; resolv: string; sandboxResolv: string } | undefined;
  contextFilter: PathFilter | undefined;

  constructor(
    readonly opts: BuildOptions,
    readonly plan: Plan,
    readonly platform: Platform,
  ) {
    this.cache = new CacheStore(path.join(opts.root, 'cache', 'keys'));
    this.limit = pLimit(Math.max(1, opts.jobs ?? availableParallelism()));
    this.cacheMounts = new CacheMounts(opts.root, this.tmpDir);
    this.sandbox = new SandboxSession(opts.root);
    this.fileDigests = new StatCache({ file: path.join(opts.root, 'cache', 'context-stat.json'), tmpDir: this.tmpDir, roots: [path.resolve(opts.contextDir)] });
  }

  emit(ev: BuildEvent): void {
    this.opts.progress?.(ev);
  }

  /** The OCI runtime, detected once and only when a RUN step actually executes. */
  runtime(): RuntimeInfo {
    this.runtimeInfo ??= detectRuntime(this.opts.runtime);
    return this.runtimeInfo;
  }

  get tmpDir(): string {
    return path.join(this.opts.root, 'tmp');
  }

  /** /etc/hosts and /etc/resolv.conf (host network, and the sandbox network's), written once per build. */
  async etc(): Promise<{ hosts: string; resolv: string; sandboxResolv: string }> {
    if (this.etcFiles) return this.etcFiles;
    const dir = path.join(this.tmpDir, `etc-${process.pid}`);
    await fsp.mkdir(dir, { recursive: true });
    const hosts = path.join(dir, 'hosts');
    await fsp.writeFile(hosts, '127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n');
    const resolv = path.join(dir, 'resolv.conf');
    let text = await fsp.readFile('/etc/resolv.conf', 'utf8').catch(() => '');
    const sandboxResolv = path.join(dir, 'resolv-sandbox.conf');
    await fsp.writeFile(sandboxResolv, sandboxResolvConf(text));
    if (/^nameserver\s+127\./m.test(text)) {
      text = (await fsp.readFile('/run/systemd/resolve/resolv.conf', 'utf8').catch(() => '')) || 'nameserver 8.8.8.8\n';
    }
    await fsp.writeFile(resolv, text);
    this.etcFiles = { hosts, resolv, sandboxResolv };
    return this.etcFiles;
  }

  async cleanup(): Promise<void> {
    for (const p of this.preparedCopies.values()) await p.release().catch(() => undefined);
    this.preparedCopies.clear();
    // only a cache: a failed write costs re-hashing next time, never the build
    await this.fileDigests.save().catch(() => undefined);
    try {
      await fsp.rm(path.join(this.tmpDir, `etc-${process.pid}`), { recursive: true, force: true });
    } finally {
      await this.sandbox.close();
    }
  }

  /**
   * A cache hit: the local record if its blob is here, else an imported one (its blob may stay
   * remote until needed).
   */
  async lookup(key: string): Promise<CacheRecord | undefined> {
    const local = await this.cache.get(key);
    const blobs = this.opts.store.blobs;
    if (local && (!local.layer || (await blobs.has(local.layer.descriptor.digest)) || this.remoteFor(local.layer.descriptor))) return local;
    for (const rc of this.opts.remoteCaches ?? []) {
      const r = await rc.get(key);
      if (r && (!r.layer || (await blobs.has(r.layer.descriptor.digest)) || rc.hasLayer(r.layer.descriptor))) return r;
    }
    return undefined;
  }

  remoteFor(desc: Descriptor): RemoteCache | undefined {
    return (this.opts.remoteCaches ?? []).find((rc) => rc.hasLayer(desc));
  }

  /** Fetch a layer blob that only an imported cache has. */
  async fetchRemoteLayer(desc: Descriptor): Promise<boolean> {
    const rc = this.remoteFor(desc);
    if (!rc) return false;
    await rc.fetchLayer(desc, this.opts.signal ? { signal: this.opts.signal } : {});
    this.stats.layersFetched++;
    return true;
  }

  /** Whether `--no-cache` / `--no-cache-filter` turns the cache off for a stage. */
  cacheDisabled(stageName: string | undefined): boolean {
    if (this.opts.noCache) return true;
    const f = this.opts.noCacheFilter;
    return !!f && !!stageName && f.some((n) => n.toLowerCase() === stageName.toLowerCase());
  }

  label(stageIdx: number, step: Step): string {
    const st = this.plan.stages[stageIdx]!;
    const name = st.name ?? `stage-${stageIdx}`;
    return `[${name} ${st.steps.indexOf(step) + 1}/${st.steps.length}] ${step.original.trim().replace(/\s+/g, ' ')}`;
  }

  chainOf(state: StageState): Digest[] {
    return state.img.config.rootfs.diff_ids;
  }
}
