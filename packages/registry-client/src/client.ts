import { PassThrough, type Readable } from 'node:stream';
import { RegistryLayer, type RegistryLayerOptions } from './registry-layer.js';
import pLimit from 'p-limit';
import {
  MAX_JSON_BYTES,
  OciError,
  VerifyingStream,
  choosePlatform,
  formatPlatform,
  formatReference,
  hostPlatform,
  isIndexMediaType,
  parseConfig,
  parseIndex,
  parseManifest,
  pairLayers,
  parseReference,
  type BlobStore,
  type Descriptor,
  type ImageConfig,
  type ImageIndex,
  type ImageStore,
  type Digest,
  type Layer,
  type LayerPair,
  type Manifest,
  type Parsed,
  type Platform,
  type Reference,
} from '@hoist/oci';
import { fetchBlobBytes, fetchBlobInto } from './blob-pull.js';
import { blobExists, pushBlob, type BlobPushResult } from './blob-push.js';
import type { ClientContext, RepoRef } from './context.js';
import type { CredentialProvider, Credentials } from './credentials.js';
import { RegistryError } from './errors.js';
import { AgentPool } from './http.js';
import { getManifest, headManifest, putManifest, type FetchedManifest } from './manifests.js';
import type { ProgressFn } from './progress.js';
import { repoScope } from './auth.js';
import { DEFAULT_RETRY, type RetryPolicy } from './retry.js';
import { RegistrySession } from './transport.js';
import { allOrAbortLinked } from './tasks.js';
import { BlobSources } from './sources.js';
import { deleteContent, listTags, type DeleteResult } from './delete.js';
import { pushImage, type PushOptions, type PushResult } from './push.js';
import { fetchCheckedLayer, type LayerChecks } from './layer-pull.js';

export interface RegistryClientOptions {
  credentials?: CredentialProvider;
  /** Registries (`host[:port]`) reached over plain HTTP (or HTTPS without verification). Loopback ones always may. */
  insecureRegistries?: string[];
  /** Extra CA certificates (PEM text or file paths), added to the system CAs and `certs.d`. */
  tlsCa?: string[];
  /** Docker-style `certs.d` directories; default `/etc/docker/certs.d`, `/etc/containers/certs.d`. */
  certsDirs?: string[];
  onProgress?: ProgressFn;
  userAgent?: string;
  /** Blob transfers at once (default 4). */
  concurrency?: number;
  retry?: Partial<RetryPolicy>;
  /** Idle timeout of a request with a body in ms (default 300 000: registries may take long to verify a big upload). */
  timeoutMs?: number;
  /**
   * How long a request without a body (GET, HEAD, starting an upload) waits for the response
   * head, and for more of its body, in ms (default 30 000). `retry.totalMs` bounds the retries.
   */
  headerTimeoutMs?: number;
  /** Blobs larger than this are uploaded in resumable chunks of this size (default 64 MiB). */
  chunkSize?: number;
}

export interface OpOptions {
  signal?: AbortSignal;
}

export interface ResolveOptions extends OpOptions {
  platform?: Platform;
}

export interface PullOptions extends ResolveOptions {
  /** Verify every layer against the config's diff_ids (in the same pass as its download) before the manifest is stored. */
  checks?: LayerChecks;
}

/** A remote image without its layers: enough for cache keys and lazy layers. */
export interface ResolvedImage {
  /** The platform manifest's descriptor. */
  descriptor: Descriptor;
  manifest: Parsed<Manifest>;
  config: Parsed<ImageConfig>;
  /** The index the manifest was chosen from, when the reference named one. */
  index?: Parsed<ImageIndex>;
  /** The index's (or manifest's) descriptor: what the reference points at. */
  top: Descriptor;
}

export type { PushOptions, PushResult };

const VERSION = '0.1.0';
const DEFAULT_HEADER_TIMEOUT_MS = 30_000;

/**
 * An OCI distribution client. Owns its connections, tokens and in-flight transfers (nothing
 * global): make one per command and `close()` it when done.
 */
export class RegistryClient {
  private readonly pool: AgentPool;
  private readonly sessions = new Map<string, RegistrySession>();
  private readonly ctx: ClientContext;
  private readonly sources = new BlobSources();

  constructor(private readonly opts: RegistryClientOptions = {}) {
    const insecure = opts.insecureRegistries ?? [];
    this.pool = new AgentPool({
      ...(opts.tlsCa ? { tlsCa: opts.tlsCa } : {}),
      ...(opts.certsDirs ? { certsDirs: opts.certsDirs } : {}),
      insecure: (host) => insecure.includes(host),
    });
    this.ctx = {
      session: (registry) => this.session(registry),
      emit: opts.onProgress,
      limit: pLimit(Math.max(1, opts.concurrency ?? 4)),
      retry: { ...DEFAULT_RETRY, ...opts.retry },
      chunkSize: opts.chunkSize ?? 64 * 1024 * 1024,
      inflight: new Map(),
    };
  }

  /** The session (base URL, auth challenge, tokens) of a registry. */
  session(registry: string): RegistrySession {
    let s = this.sessions.get(registry);
    if (!s) {
      s = new RegistrySession({
        registry,
        pool: this.pool,
        credentials: this.opts.credentials,
        plainHttp: RegistrySession.plainHttpAllowed(registry, this.opts.insecureRegistries ?? []),
        userAgent: this.opts.userAgent ?? `hoist/${VERSION} (node ${process.version})`,
        retry: this.ctx.retry,
        timeoutMs: this.opts.timeoutMs ?? 300_000,
        headerTimeoutMs: this.opts.headerTimeoutMs ?? DEFAULT_HEADER_TIMEOUT_MS,
      });
      this.sessions.set(registry, s);
    }
    return s;
  }

  /** Close idle connections. The client stays usable (connections reopen). */
  close(): void {
    this.pool.close();
  }

  /** A manifest or index by tag or digest, exact bytes, verified. */
  async getManifest(ref: string | Reference, opts: OpOptions = {}): Promise<FetchedManifest> {
    const r = toRef(ref);
    const m = await getManifest(this.ctx, r, opts.signal);
    this.emitManifest('pull', r, m.descriptor);
    return m;
  }

  /** The descriptor a tag or digest points at (HEAD), or undefined when absent. */
  async headManifest(ref: string | Reference, opts: OpOptions = {}): Promise<Descriptor | undefined> {
    return headManifest(this.ctx, toRef(ref), opts.signal);
  }

  /** Push a manifest's exact bytes (its blobs must be in the repository already). */
  async putManifest(ref: string | Reference, raw: Buffer, mediaType: string, opts: OpOptions = {}): Promise<Descriptor> {
    const r = toRef(ref);
    const d = await putManifest(this.ctx, r, raw, mediaType, opts.signal);
    this.emitManifest('push', r, d);
    return d;
  }

  /** Delete a manifest by digest (and with it every tag on it). 405 is an UNSUPPORTED error naming the registry setting. */
  async deleteManifest(ref: string | Reference, digest: string, opts: OpOptions = {}): Promise<DeleteResult> {
    return deleteContent(this.ctx, toRef(ref), 'manifests', digest, opts.signal);
  }

  /** Unlink a blob from a repository (the registry's garbage collection frees its bytes). */
  async deleteBlob(ref: string | Reference | RepoRef, digest: string, opts: OpOptions = {}): Promise<DeleteResult> {
    return deleteContent(this.ctx, toRef(ref), 'blobs', digest, opts.signal);
  }

  /** Every tag of the repository of `ref` (empty when the repository does not exist). */
  async listTags(ref: string | Reference | RepoRef, opts: OpOptions = {}): Promise<string[]> {
    return listTags(this.ctx, toRef(ref), opts.signal);
  }

  async hasBlob(ref: string | Reference | RepoRef, desc: Pick<Descriptor, 'digest' | 'size'>, opts: OpOptions = {}): Promise<boolean> {
    const r = toRef(ref);
    return blobExists(this.session(r.registry), r, desc, [repoScope(r.repository, 'pull')], opts.signal);
  }

  /** One blob into the store, streamed, verified, resumable. Returns whether it was there already. */
  async fetchBlob(ref: string | Reference | RepoRef, desc: Descriptor, store: ImageStore | BlobStore, opts: OpOptions = {}): Promise<'exists' | 'pulled'> {
    const r = toRef(ref);
    this.sources.remember(r, [desc]);
    return fetchBlobInto(this.ctx, r, desc, blobsOf(store), opts.signal);
  }

  /**
   * A blob as a stream (for lazy layers: extract while downloading). The stream errors with a
   * RegistryError unless exactly `desc.size` bytes with `desc.digest` arrive; no resume.
   */
  async openBlob(ref: string | Reference | RepoRef, desc: Descriptor, opts: OpOptions = {}): Promise<Readable> {
    const r = toRef(ref);
    const s = this.session(r.registry);
    const res = await s.request({ method: 'GET', url: `/v2/${r.repository}/blobs/${desc.digest}`, repository: r.repository, scopes: [repoScope(r.repository, 'pull')], ...(opts.signal ? { signal: opts.signal } : {}) });
    if (res.status !== 200) await s.fail(res, `cannot download blob ${desc.digest}`, r.repository);
    const verify = new VerifyingStream(desc.digest, desc.size);
    const out = new PassThrough();
    const where = { registry: r.registry, repository: r.repository };
    res.body.on('error', (e) => out.destroy(new RegistryError('NETWORK', `download of blob ${desc.digest} failed: ${e.message}`, { ...where, temporary: true, cause: e })));
    verify.on('error', (e: Error & { code?: string }) =>
      out.destroy(new RegistryError(e.code === 'SIZE_MISMATCH' ? 'SIZE_MISMATCH' : 'DIGEST_MISMATCH', e.message, { ...where, cause: e })),
    );
    out.on('close', () => res.body.destroy());
    res.body.pipe(verify).pipe(out);
    return out;
  }

  /** A small blob (a config) into memory, verified. */
  async fetchBlobBytes(ref: string | Reference | RepoRef, desc: Descriptor, opts: OpOptions & { max?: number } = {}): Promise<Buffer> {
    return fetchBlobBytes(this.ctx, toRef(ref), desc, opts.max ?? MAX_JSON_BYTES, opts.signal);
  }

  /** Make one blob of the store present in a repository (HEAD, mount, or upload). */
  async pushBlob(store: ImageStore | BlobStore, desc: Descriptor, ref: string | Reference | RepoRef, opts: OpOptions & { mountFrom?: string[]; layer?: Layer } = {}): Promise<BlobPushResult> {
    const r = toRef(ref);
    return pushBlob(this.ctx, r, desc, this.blobPush(r, desc, { blobs: blobsOf(store), ...opts }));
  }

  /**
   * How to push one blob: the repositories to mount it from (given, the layer's own on the same
   * registry, those the client learnt), and where its bytes are when the store lacks them (the
   * layer given, else a repository the client resolved it from).
   */
  private blobPush(r: Reference, desc: Descriptor, o: { blobs: BlobStore; mountFrom?: string[]; layer?: Layer | undefined; signal?: AbortSignal }): Parameters<typeof pushBlob>[3] {
    const own = o.layer?.origin.repository;
    const explicit = [...(o.mountFrom ?? []), ...(own && own.registry === r.registry ? [own.repository] : [])];
    const from = o.layer ? undefined : this.sources.anySource(desc, r);
    const layer = o.layer ?? (from ? this.layer(from, desc, desc.digest) : undefined);
    return { blobs: o.blobs, mountFrom: this.sources.candidates(r, desc, explicit), ...(layer ? { layer } : {}), ...(o.signal ? { signal: o.signal } : {}) };
  }

  /**
   * A layer blob in a repository, lazy: nothing is requested until it is opened or fetched
   * (`fetchInto` verifies it against `diffId` while downloading when given `checks`).
   */
  layer(ref: string | Reference | RepoRef, desc: Descriptor, diffId: Digest, opts: RegistryLayerOptions = {}): RegistryLayer {
    const r = toRef(ref);
    this.sources.remember(r, [desc]);
    return new RegistryLayer(this, r, desc, diffId, opts);
  }

  /** Manifest and config of `ref` for `platform` (default: this host's), without layers. */
  async resolve(ref: string | Reference, opts: ResolveOptions = {}): Promise<ResolvedImage> {
    const r = toRef(ref);
    const top = await this.getManifest(r, opts);
    let index: Parsed<ImageIndex> | undefined;
    let m = top;
    if (isIndexMediaType(top.descriptor.mediaType)) {
      index = this.parse(r, () => parseIndex(top.raw));
      const want = opts.platform ?? hostPlatform();
      const pick = choosePlatform(index.value.manifests, want);
      if (!pick) {
        // attestation manifests (BuildKit's unknown/unknown entries) are not images to offer
        const offered = index.value.manifests.filter((d) => d.platform && !(d.platform.os === 'unknown' && d.platform.architecture === 'unknown')).map((d) => formatPlatform(d.platform!));
        throw new RegistryError('PLATFORM_UNKNOWN', `${formatReference(r)} has no image for ${formatPlatform(want)}`, {
          registry: r.registry,
          repository: r.repository,
          hint: offered.length ? `It offers ${[...new Set(offered)].join(', ')}; choose one with --platform` : 'The index lists no platforms',
        });
      }
      m = await this.getManifest({ registry: r.registry, repository: r.repository, digest: pick.digest }, opts);
      if (m.descriptor.size !== pick.size) {
        throw new RegistryError('SIZE_MISMATCH', `manifest ${pick.digest} is ${m.descriptor.size} bytes, the index says ${pick.size}`, { registry: r.registry, repository: r.repository });
      }
    }
    if (isIndexMediaType(m.descriptor.mediaType)) throw new RegistryError('MANIFEST_INVALID', `index ${m.descriptor.digest} points at another index`, { registry: r.registry, repository: r.repository });
    const manifest = this.parse(r, () => parseManifest(m.raw));
    const configRaw = await this.fetchBlobBytes(r, manifest.value.config, opts);
    const config = this.parse(r, () => parseConfig(configRaw));
    this.sources.remember(r, [manifest.value.config, ...manifest.value.layers]);
    const out: ResolvedImage = { descriptor: m.descriptor, manifest, config, top: top.descriptor };
    if (index) out.index = index;
    return out;
  }

  /**
   * Pull `ref` (for `platform`) into the store: layers and config first, then the manifest,
   * then the index — so the store never holds a manifest whose blobs are missing. With
   * `opts.checks`, neither one whose layers do not match its config. Does not tag.
   * Returns the descriptor `ref` points at (the index, if it names one).
   */
  async pull(ref: string | Reference, store: ImageStore, opts: PullOptions = {}): Promise<Descriptor> {
    const r = toRef(ref);
    const img = await this.resolve(r, opts);
    const pairs = layerPairs(r, img);
    const put = async (raw: Buffer, mediaType: string): Promise<void> => {
      try {
        await store.blobs.putBytes(raw, mediaType);
      } catch (e) {
        throw new RegistryError('STORE', `cannot write to the store ${store.root}: ${(e as Error).message}`, { registry: r.registry, repository: r.repository, cause: e });
      }
    };
    // The config came with resolve(); only layers are left to fetch.
    await put(img.config.raw, img.manifest.value.config.mediaType);
    const checks = opts.checks;
    const total = img.manifest.value.layers.length;
    await allOrAbortLinked(
      opts.signal,
      pairs.map((pair) => async (signal: AbortSignal): Promise<void> => {
        if (checks) await fetchCheckedLayer(this.ctx, r, { pair, total, blobs: store.blobs, checks, signal });
        else await this.fetchBlob(r, pair.layer, store, { signal });
      }),
    );
    await put(img.manifest.raw, img.descriptor.mediaType);
    if (img.index) await put(img.index.raw, img.top.mediaType);
    return img.top;
  }

  /**
   * Fetch one layer of a resolved image into the store, verified against its diff_id in the
   * same pass as the download (or from the store, when the blob is there already).
   */
  async fetchLayer(ref: string | Reference, pair: LayerPair, blobs: BlobStore, opts: { checks: LayerChecks; total: number; signal?: AbortSignal }): Promise<void> {
    const signal = opts.signal ?? new AbortController().signal;
    await fetchCheckedLayer(this.ctx, toRef(ref), { pair, total: opts.total, blobs, checks: opts.checks, signal });
  }

  /**
   * Push a manifest or index from the store to `ref` (`registry/repo:tag` or `@digest`): blobs
   * already there are skipped, blobs known in other repositories of the registry are mounted,
   * the rest uploaded; then the manifest's exact bytes.
   */
  async push(store: ImageStore, desc: Descriptor, ref: string | Reference, opts: PushOptions = {}): Promise<PushResult> {
    const r = toRef(ref);
    const layers = new Map((opts.layers ?? []).map((l) => [l.descriptor.digest as string, l]));
    return pushImage({
      ctx: this.ctx,
      store,
      desc,
      ref: r,
      opts,
      pushBlob: (d, signal) => pushBlob(this.ctx, r, d, this.blobPush(r, d, { blobs: store.blobs, ...(opts.mountFrom ? { mountFrom: opts.mountFrom } : {}), layer: layers.get(d.digest), signal })),
      putManifest: (target, raw, mediaType, signal) => this.putManifest(target, raw, mediaType, signal ? { signal } : {}),
      headManifest: (target, signal) => headManifest(this.ctx, target, signal),
      learnSources: () => this.sources.learnFromStore(store, r),
    });
  }

  /** Check credentials against a registry as `docker login` does. */
  async checkLogin(registry: string, creds: Credentials, opts: OpOptions = {}): Promise<void> {
    const s = new RegistrySession({
      registry,
      pool: this.pool,
      credentials: undefined,
      plainHttp: RegistrySession.plainHttpAllowed(registry, this.opts.insecureRegistries ?? []),
      userAgent: this.opts.userAgent ?? `hoist/${VERSION}`,
      retry: this.ctx.retry,
      timeoutMs: this.opts.timeoutMs ?? 300_000,
      headerTimeoutMs: this.opts.headerTimeoutMs ?? DEFAULT_HEADER_TIMEOUT_MS,
    });
    await s.verifyCredentials(creds, opts.signal);
  }

  private emitManifest(action: 'pull' | 'push', r: Reference, d: Descriptor): void {
    this.opts.onProgress?.({ kind: 'manifest', action, ref: formatReference(r), digest: d.digest, mediaType: d.mediaType, size: d.size });
  }

  private parse<T>(r: Reference, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof OciError) throw new RegistryError('MANIFEST_INVALID', e.message, { registry: r.registry, repository: r.repository, cause: e });
      throw e;
    }
  }
}

function toRef(ref: string | Reference | RepoRef): Reference {
  if (typeof ref !== 'string') return ref;
  try {
    return parseReference(ref);
  } catch (e) {
    throw new RegistryError('NAME_UNKNOWN', (e as Error).message, { registry: '-', cause: e, hint: 'Write references as [registry/]name[:tag][@digest]' });
  }
}

function blobsOf(store: ImageStore | BlobStore): BlobStore {
  return 'blobs' in store ? store.blobs : store;
}

/** The image's layers with their diff_ids; a manifest and config that disagree are IMAGE_INVALID. */
function layerPairs(r: Reference, img: ResolvedImage): LayerPair[] {
  try {
    return pairLayers(img.manifest.value, img.config.value);
  } catch (e) {
    throw new RegistryError('IMAGE_INVALID', `${formatReference(r)}: ${(e as Error).message}`, { registry: r.registry, repository: r.repository, cause: e });
  }
}
