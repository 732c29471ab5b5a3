import pLimit, { type LimitFunction } from 'p-limit';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { availableParallelism } from 'node:os';
import { LayerCatalog, storePaths, type Digest, type Platform } from '@hoist/oci';
import type { Plan, Step } from '@hoist/parser';
import { FileCacheStore, type CacheRecord, type CacheStore } from './cache.js';
import { RuntimeExecutor, type Executor } from './executor.js';
import { SandboxSession } from './sandbox/session.js';
import type { BuildEvent, BuildOptions } from './types.js';
import { BuildStats } from './build-stats.js';
import type { PathFilter } from './sources.js';
import { CacheMounts } from './cache-mounts.js';
import { remoteMountSeeder } from './mount-seeder.js';
import { sandboxResolvConf, type RunNetwork } from './sandbox/network.js';
import type { StageState } from './state.js';
import { hostsFileText, hostGatewayAddress } from './run-flags.js';
import { isLayerStep } from './layer-step.js';
import { StatCache, statCacheFile } from './stat-cache.js';
import { seccompFor, type OciSeccomp } from './sandbox/seccomp.js';
import { DEFAULT_CAPABILITIES } from './sandbox/capabilities.js';

/** What a RUN's sandbox needs besides its root, started ahead (see run-prep.ts). */
export interface SandboxPrep {
  /** The network, once the runtime is found and the sandbox session (watchdog, private dir) is up. */
  ready(): Promise<RunNetwork>;
  /** Close the network (idempotent; also when it failed or was never awaited). */
  close(): Promise<void>;
}

/**
 * The services one build's steps use (cache records, the executor, mounts, sandboxes, base
 * images, events): owned by `build()`, never global. The scheduler's own state (which stage
 * ran, keys found) is the Solver's, not this.
 */
export class BuildSession {
  readonly cache: CacheStore;
  readonly executor: Executor;
  readonly limit: LimitFunction;
  /** Where each layer blob comes from: the store, a base image's registry (their layers are added as they are resolved), an imported cache. */
  readonly layers: LayerCatalog;
  readonly stats = new BuildStats();
  /** RUN --mount=type=cache directories and their sharing locks. */
  readonly cacheMounts: CacheMounts;
  /** Watchdog and private tmpfs (bundles, secrets) of this build's RUN sandboxes. */
  readonly sandbox: SandboxSession;
  /** Digests of unchanged context files, from the store's stat cache (read once, saved at the end). */
  readonly fileDigests: StatCache;
  private etcFiles: { hosts: string; resolv: string; sandboxResolv: string } | undefined;
  /** The directory of etcFiles, once this build starts making it. */
  private etcDir: string | undefined;
  /** RUN sandboxes prepared ahead of their step, by step id (run-prep.ts); closed with the session. */
  readonly preparedRuns = new Map<string, SandboxPrep>();
  private sandboxesClosed: Promise<void> | undefined;
  /** Cache records of steps this build executed whose writes may still run (see record). */
  private readonly recording = new Map<string, { rec: CacheRecord; written: Promise<void> }>();
  private compiledSeccomp: { filter: OciSeccomp | undefined } | undefined;
  contextFilter: PathFilter | undefined;

  constructor(
    readonly opts: BuildOptions,
    readonly plan: Plan,
    readonly platform: Platform,
  ) {
    this.cache = opts.cache ?? new FileCacheStore(storePaths(opts.root).cacheKeys);
    this.executor = opts.executor ?? new RuntimeExecutor({ root: opts.root, ...(opts.runtime ? { preferred: opts.runtime } : {}) });
    this.layers = new LayerCatalog(opts.store.blobs, opts.remoteCaches ?? []);
    this.limit = pLimit(Math.max(1, opts.jobs ?? availableParallelism()));
    this.cacheMounts = new CacheMounts(opts.root, this.tmpDir, remoteMountSeeder(opts, (ev) => this.emit(ev)));
    this.sandbox = new SandboxSession(opts.root);
    this.fileDigests = new StatCache({
      file: statCacheFile(opts.root, opts.contextDir),
      legacy: path.join(opts.root, 'cache', 'context-stat.json'),
      tmpDir: this.tmpDir,
      roots: [path.resolve(opts.contextDir)],
    });
  }

  emit(ev: BuildEvent): void {
    this.opts.progress?.(ev);
  }

  get tmpDir(): string {
    return storePaths(this.opts.root).tmp;
  }

  /**
   * /etc/hosts and /etc/resolv.conf (host network, and the sandbox network's), written once per
   * build. Synchronous (issue 16): three small files and two reads, made while a RUN is being
   * prepared; as awaited calls they were a dozen thread-pool turns between the COPYs' own.
   */
  async etc(): Promise<{ hosts: string; resolv: string; sandboxResolv: string }> {
    if (this.etcFiles) return this.etcFiles;
    const dir = path.join(this.tmpDir, `etc-${process.pid}`);
    this.etcDir = dir;
    mkdirSync(dir, { recursive: true });
    const hosts = path.join(dir, 'hosts');
    writeFileSync(hosts, hostsFileText(this.opts.runHost?.extraHosts ?? [], hostGatewayAddress()));
    const resolv = path.join(dir, 'resolv.conf');
    let text = readOrEmpty('/etc/resolv.conf');
    const sandboxResolv = path.join(dir, 'resolv-sandbox.conf');
    writeFileSync(sandboxResolv, sandboxResolvConf(text));
    if (/^nameserver\s+127\./m.test(text)) text = readOrEmpty('/run/systemd/resolve/resolv.conf') || 'nameserver 8.8.8.8\n';
    writeFileSync(resolv, text);
    this.etcFiles = { hosts, resolv, sandboxResolv };
    return this.etcFiles;
  }

  /**
   * The seccomp filter of every unprivileged RUN of this build (`opts.seccomp` for Docker's
   * default capabilities), compiled once: by a RUN's preparation, off its critical path, which
   * knows whether the kernel runs x32 system calls (`x32`; unknown counts as yes).
   */
  seccompFilter(x32?: boolean): { filter: OciSeccomp | undefined } {
    this.compiledSeccomp ??= { filter: seccompFor(this.opts.seccomp, DEFAULT_CAPABILITIES, x32) };
    return this.compiledSeccomp;
  }

  /**
   * Release what RUN sandboxes use (preparations, the private tmpfs, the watchdog): once nothing
   * runs in one any more. Early (while the image is written), or at the latest by cleanup().
   */
  closeSandboxes(): Promise<void> {
    this.sandboxesClosed ??= (async () => {
      const unused = [...this.preparedRuns.values()];
      this.preparedRuns.clear();
      await Promise.all(unused.map((p) => p.close()));
      await this.sandbox.close();
    })();
    return this.sandboxesClosed;
  }

  /**
   * Write the cache record of an executed step (and note it as its parent's child) while the
   * next steps run (issue 16: off the critical path). Until written, lookup finds it here;
   * recordsWritten() is awaited before the image is tagged, and cleanup() always waits.
   */
  record(rec: CacheRecord): void {
    const written = (async () => {
      // never a record of a blob that is not stored yet (a commit stores it off its path)
      if (rec.layer) await this.opts.snapshotter.blobStored(rec.layer.descriptor.digest);
      await this.cache.put(rec);
      if (rec.parent !== undefined) await this.cache.addChild?.(rec.parent, rec);
    })();
    written.catch(() => undefined);
    this.recording.set(rec.key, { rec, written });
  }

  /** Every record() written; the first failure is thrown. */
  async recordsWritten(): Promise<void> {
    await Promise.all([...this.recording.values()].map((r) => r.written));
  }

  async cleanup(): Promise<void> {
    // only a cache: a failed write costs re-hashing next time, never the build
    const saved = this.fileDigests.save().catch(() => undefined);
    try {
      // only if this build made it (a fully cached one runs nothing and makes none)
      if (this.etcDir) rmSync(this.etcDir, { recursive: true, force: true });
    } finally {
      await saved;
      await Promise.allSettled([...this.recording.values()].map((r) => r.written));
      await this.closeSandboxes();
      // committed mounts' directories are removed in the background: none outlives the build
      await this.opts.snapshotter.settle();
    }
  }

  /**
   * A cache hit: the local record if its layer can be had (the blob is here, or a base image or
   * an imported cache has it), else an imported one (its blob may stay remote until needed).
   */
  async lookup(key: string): Promise<CacheRecord | undefined> {
    const usable = async (r: CacheRecord | undefined): Promise<boolean> => {
      if (r?.layer) await this.opts.snapshotter.blobStored(r.layer.descriptor.digest);
      return !!r && (!r.layer || (await this.layers.find(r.layer.descriptor, r.layer.diffId)) !== undefined);
    };
    const local = this.recording.get(key)?.rec ?? (await this.cache.get(key));
    if (await usable(local)) return local;
    for (const rc of this.opts.remoteCaches ?? []) {
      const r = await rc.get(key);
      if (await usable(r)) return r;
    }
    return undefined;
  }

  /** Whether `--no-cache` / `--no-cache-filter` turns the cache off for a stage. */
  cacheDisabled(stageName: string | undefined): boolean {
    if (this.opts.noCache) return true;
    const f = this.opts.noCacheFilter;
    return !!f && !!stageName && f.some((n) => n.toLowerCase() === stageName.toLowerCase());
  }

  /** `[stage i/n] INSTRUCTION`, counting only the steps the progress shows (layer steps), as BuildKit. */
  label(stageIdx: number, step: Step): string {
    const st = this.plan.stages[stageIdx]!;
    const name = st.name ?? `stage-${stageIdx}`;
    const shown = st.steps.filter((x) => isLayerStep(x.instruction));
    const i = shown.indexOf(step);
    return `[${name}${i >= 0 ? ` ${i + 1}/${shown.length}` : ''}] ${step.original.trim().replace(/\s+/g, ' ')}`;
  }

  chainOf(state: StageState): Digest[] {
    return state.img.config.rootfs.diff_ids;
  }
}

function readOrEmpty(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
