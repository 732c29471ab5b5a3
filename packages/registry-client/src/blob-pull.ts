import { createHash, type Hash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { withFileLock, type BlobStore, type Descriptor, type Digest } from '@hoist/oci';
import { repoScope } from './auth.js';
import { repoName, type ClientContext, type RepoRef } from './context.js';
import { RegistryError } from './errors.js';
import { header, isAbortError, isRetriableNetworkError, readBody } from './http.js';
import { blobReporter } from './progress.js';
import { RetryBudget, sleep } from './retry.js';

/** A check fed with a blob's bytes, in order, as they arrive. */
export interface ContentCheck {
  /** Resolves when the check can take more; rejects as soon as the content is known bad. */
  write(chunk: Buffer): Promise<void>;
  /** Every byte was written: resolves when the content passed, rejects with why not. */
  end(): Promise<void>;
  abort(): void;
}

/**
 * Download one blob into `blobs`, verified: size-capped while streaming, hashed, and only
 * renamed into the store when digest and size match. An interrupted download resumes with a
 * Range request; a partial file left by a killed process is resumed by the next run.
 * Concurrent fetches of the same blob (in this client or another process) wait for one another.
 */
export async function fetchBlobInto(ctx: ClientContext, r: RepoRef, desc: Descriptor, blobs: BlobStore, signal?: AbortSignal, tap?: BlobTap): Promise<'exists' | 'pulled'> {
  const report = blobReporter(ctx.emit, { kind: 'blob', action: 'exists', ref: repoName(r), digest: desc.digest, total: desc.size });
  if (await blobs.has(desc.digest)) {
    report(desc.size);
    return 'exists';
  }
  const map = ctx.inflight;
  const key = `${blobs.root}\0${desc.digest}`;
  let p = map.get(key);
  if (!p) {
    p = ctx.limit(async () => {
      const { lock } = await blobs.downloadPaths(desc.digest);
      await withFileLock(lock, async () => {
        if (await blobs.has(desc.digest)) return;
        await download(ctx, r, desc, blobs, { signal, tap });
      }, 24 * 3600_000);
    });
    map.set(key, p);
    void p.finally(() => map.delete(key)).catch(() => undefined);
  }
  await p;
  return 'pulled';
}

const WRITE_BATCH = 1024 * 1024;
const SYNC_EVERY = 16 * 1024 * 1024;

/**
 * Starts writing dirty pages back while the download goes on (one fdatasync at a time, every
 * 16 MiB), so the store's fsync before the rename has little left to do: the disk works in
 * parallel with the network instead of after it.
 */
class Flusher {
  private synced = 0;
  private pending: Promise<void> | undefined;
  constructor(private readonly fh: FileHandle) {}
  wrote(offset: number): void {
    if (this.pending || offset - this.synced < SYNC_EVERY) return;
    const at = offset;
    this.pending = this.fh.datasync().then(
      () => {
        this.synced = at;
        this.pending = undefined;
      },
      () => {
        this.pending = undefined;
      },
    );
  }
  async idle(): Promise<void> {
    await this.pending;
  }
}

async function hashFile(file: string, hash: Hash, check: TapFeed): Promise<void> {
  for await (const c of createReadStream(file) as AsyncIterable<Buffer>) {
    hash.update(c);
    await check.write(c);
  }
}

async function download(ctx: ClientContext, r: RepoRef, desc: Descriptor, blobs: BlobStore, o: { signal?: AbortSignal | undefined; tap?: BlobTap | undefined }): Promise<void> {
  const signal = o.signal;
  const session = ctx.session(r.registry);
  const { partial } = await blobs.downloadPaths(desc.digest);
  const report = blobReporter(ctx.emit, { kind: 'blob', action: 'pull', ref: repoName(r), digest: desc.digest, total: desc.size });
  const err = (code: 'DIGEST_MISMATCH' | 'SIZE_MISMATCH' | 'PROTOCOL' | 'NETWORK', msg: string, cause?: unknown): RegistryError =>
    new RegistryError(code, msg, { registry: r.registry, repository: r.repository, temporary: code === 'NETWORK', ...(cause !== undefined ? { cause } : {}) });

  let hash = createHash('sha256');
  let offset = 0;
  // the content check sees exactly the bytes on disk, in order, and restarts with the file
  const check = new TapFeed(o.tap, (e) => new RegistryError('IMAGE_INVALID', `layer ${desc.digest}: ${(e as Error).message}`, { registry: r.registry, repository: r.repository, cause: e }));
  // A partial download left by an earlier (killed) run: hash what is there and go on from its end.
  const st = await fsp.stat(partial).catch(() => undefined);
  let fh: FileHandle;
  try {
    if (st && st.size <= desc.size) {
      await hashFile(partial, hash, check);
      offset = st.size;
    } else if (st) await fsp.rm(partial, { force: true });
    // O_APPEND: after a truncate(0) (restart) writes go to the start again, never leave a hole.
    fh = await fsp.open(partial, 'a');
  } catch (e) {
    check.abort();
    throw e;
  }
  const flusher = new Flusher(fh);
  let restartedAfterMismatch = false;
  // retries stop once no byte has arrived for the retry policy's totalMs
  const budget = new RetryBudget(ctx.retry);
  let resumed = offset > 0;
  try {
    for (;;) {
      if (offset < desc.size) {
        const res = await session.request({
          method: 'GET',
          url: `/v2/${r.repository}/blobs/${desc.digest}`,
          repository: r.repository,
          scopes: [repoScope(r.repository, 'pull')],
          headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
          ...(signal ? { signal } : {}),
        });
        const restart = async (): Promise<void> => {
          await fh.truncate(0);
          hash = createHash('sha256');
          offset = 0;
          check.restart();
        };
        if (res.status === 206 && offset > 0) {
          const m = /^bytes (\d+)-(\d+)\/(\d+|\*)/.exec(header(res, 'content-range') ?? '');
          if (!m || Number(m[1]) !== offset) {
            res.body.destroy();
            throw err('PROTOCOL', `blob ${desc.digest}: asked for bytes from ${offset}, got range "${header(res, 'content-range') ?? ''}"`);
          }
        } else if (res.status === 200) {
          if (offset > 0) await restart(); // the server ignored Range: start over
          const len = Number(header(res, 'content-length'));
          if (Number.isFinite(len) && header(res, 'content-length') !== undefined && len !== desc.size) {
            res.body.destroy();
            throw err('SIZE_MISMATCH', `blob ${desc.digest} is ${len} bytes at the registry, the manifest says ${desc.size}`);
          }
        } else if (res.status === 416 && offset > 0) {
          res.body.resume();
          await restart();
          continue;
        } else {
          await session.fail(res, `cannot download blob ${desc.digest}`, r.repository);
        }
        if (resumed) report(offset, true);
        resumed = false;
        const before = offset;
        // Chunks are written in batches; only bytes on disk are hashed and counted, so an
        // interruption resumes exactly after them.
        let batch: Buffer[] = [];
        let batchBytes = 0;
        const flush = async (): Promise<void> => {
          if (!batchBytes) return;
          const bufs = batch;
          batch = [];
          batchBytes = 0;
          try {
            await fh.writev(bufs);
          } catch (e) {
            throw new RegistryError('STORE', `cannot write ${partial}: ${(e as Error).message}`, { registry: r.registry, repository: r.repository, cause: e });
          }
          for (const b of bufs) {
            hash.update(b);
            offset += b.length;
          }
          for (const b of bufs) await check.write(b);
          flusher.wrote(offset);
          report(offset);
        };
        try {
          for await (const chunk of res.body as AsyncIterable<Buffer>) {
            if (offset + batchBytes + chunk.length > desc.size) {
              res.body.destroy();
              await restart();
              throw err('SIZE_MISMATCH', `blob ${desc.digest} is larger than the ${desc.size} bytes its descriptor says`);
            }
            batch.push(chunk);
            batchBytes += chunk.length;
            if (batchBytes >= WRITE_BATCH) await flush();
          }
          await flush();
          if (offset < desc.size) throw Object.assign(new Error('connection closed before the blob ended'), { code: 'ECONNRESET' });
        } catch (e) {
          if (e instanceof RegistryError) throw e;
          if (isAbortError(e) || signal?.aborted) throw new RegistryError('ABORTED', `download of ${desc.digest} aborted`, { registry: r.registry, repository: r.repository, cause: e });
          if (!isRetriableNetworkError(e)) throw err('NETWORK', `download of blob ${desc.digest} failed: ${(e as Error).message}`, e);
          if (offset > before) budget.progressed();
          const wait = budget.next();
          if (wait === undefined) throw err('NETWORK', `download of blob ${desc.digest} kept failing: ${(e as Error).message}`, e);
          resumed = true;
          await sleep(wait, signal).catch((a: unknown) => {
            throw new RegistryError('ABORTED', `download of ${desc.digest} aborted`, { registry: r.registry, repository: r.repository, cause: a });
          });
          continue;
        }
      }
      const got = `sha256:${hash.digest('hex')}` as Digest;
      if (got !== desc.digest) {
        await fh.truncate(0);
        // Bytes joined across a resume may come from different attempts; retry once from scratch.
        if (!restartedAfterMismatch && budget.retried) {
          restartedAfterMismatch = true;
          hash = createHash('sha256');
          offset = 0;
          check.restart();
          continue;
        }
        throw err('DIGEST_MISMATCH', `blob ${desc.digest} downloaded from the registry hashes to ${got}`);
      }
      break;
    }
    await check.end();
  } catch (e) {
    check.abort();
    await flusher.idle();
    await fh.close().catch(() => undefined);
    // Keep a partial download for the next run unless its content is known to be wrong.
    if (!(e instanceof RegistryError) || (e.code !== 'ABORTED' && e.code !== 'NETWORK' && e.code !== 'TIMEOUT')) await fsp.rm(partial, { force: true });
    throw e;
  }
  await flusher.idle();
  await fh.close();
  try {
    await blobs.commitDownload(partial, desc);
  } catch (e) {
    await fsp.rm(partial, { force: true });
    throw new RegistryError('STORE', `cannot add blob ${desc.digest} to the store: ${(e as Error).message}`, { registry: r.registry, repository: r.repository, cause: e });
  }
}

/**
 * A content check to run on a blob while it downloads (e.g. a layer's diff_id). `done` is set
 * when the check saw every byte of the blob and passed; otherwise (the blob was there already,
 * or another caller downloaded it) the caller checks the stored blob itself.
 */
export interface BlobTap {
  open(): ContentCheck;
  done: boolean;
}

/**
 * Feeds a tap's check with the bytes on disk, reopening it when the download restarts. A
 * failed check is reported only at the end, once the bytes are known to match the blob's
 * digest: until then a corrupted transfer, not the image, may be to blame.
 */
class TapFeed {
  private check: ContentCheck | undefined;
  private failure: { error: unknown } | undefined;
  constructor(
    private readonly tap: BlobTap | undefined,
    private readonly wrap: (e: unknown) => RegistryError,
  ) {
    this.check = tap?.open();
  }
  async write(b: Buffer): Promise<void> {
    if (!this.check || this.failure) return;
    try {
      await this.check.write(b);
    } catch (error) {
      this.failure = { error };
      this.check.abort();
    }
  }
  restart(): void {
    this.check?.abort();
    this.failure = undefined;
    this.check = this.tap?.open();
  }
  /** The blob is complete and its digest verified: the check's verdict. */
  async end(): Promise<void> {
    if (!this.check || !this.tap) return;
    if (this.failure) throw this.wrap(this.failure.error);
    await this.check.end().catch((e: unknown) => {
      throw this.wrap(e);
    });
    this.check = undefined;
    this.tap.done = true;
  }
  abort(): void {
    this.check?.abort();
    this.check = undefined;
  }
}

/** A small blob (an image config) into memory, verified and capped. */
export async function fetchBlobBytes(ctx: ClientContext, r: RepoRef, desc: Descriptor, max: number, signal?: AbortSignal): Promise<Buffer> {
  if (desc.size > max) throw new RegistryError('TOO_LARGE', `blob ${desc.digest} is ${desc.size} bytes, over the ${max}-byte limit`, { registry: r.registry, repository: r.repository });
  const session = ctx.session(r.registry);
  const budget = new RetryBudget(ctx.retry);
  for (;;) {
    const res = await session.request({ method: 'GET', url: `/v2/${r.repository}/blobs/${desc.digest}`, repository: r.repository, scopes: [repoScope(r.repository, 'pull')], ...(signal ? { signal } : {}) });
    if (res.status !== 200) await session.fail(res, `cannot download blob ${desc.digest}`, r.repository);
    let data: Buffer;
    try {
      data = await readBody(res.body, desc.size);
    } catch (e) {
      if ((e as { code?: string }).code === 'TOO_LARGE') throw new RegistryError('SIZE_MISMATCH', `blob ${desc.digest} is larger than its descriptor size ${desc.size}`, { registry: r.registry, repository: r.repository });
      const wait = isRetriableNetworkError(e) ? budget.next() : undefined;
      if (wait !== undefined) {
        await sleep(wait, signal);
        continue;
      }
      throw new RegistryError('NETWORK', `download of blob ${desc.digest} failed: ${(e as Error).message}`, { registry: r.registry, repository: r.repository, temporary: true, cause: e });
    }
    if (data.length !== desc.size) throw new RegistryError('SIZE_MISMATCH', `blob ${desc.digest}: got ${data.length} bytes, descriptor says ${desc.size}`, { registry: r.registry, repository: r.repository });
    const got = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    if (got !== desc.digest) throw new RegistryError('DIGEST_MISMATCH', `blob ${desc.digest} downloaded from the registry hashes to ${got}`, { registry: r.registry, repository: r.repository });
    return data;
  }
}
