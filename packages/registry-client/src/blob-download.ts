import { createHash, type Hash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { BlobStore, Descriptor, Digest } from '@hoist/oci';
import { repoScope } from './auth.js';
import { repoName, type ClientContext, type RepoRef } from './context.js';
import { RegistryError } from './errors.js';
import { header, isAbortError, isRetriableNetworkError, type HttpResponse } from './http.js';
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

/**
 * One blob's download into the store: the state its steps share (the partial file, hash,
 * offset, content check, retry budget), so that each step is small. Resumes a partial file a
 * killed run left, resumes with Range after an interruption, verifies the digest at the end.
 */
export class BlobDownload {
  private hash = createHash('sha256');
  private offset = 0;
  private resumed = false;
  private restartedAfterMismatch = false;
  // retries stop once no byte has arrived for the retry policy's totalMs
  private readonly budget: RetryBudget;
  private readonly check: TapFeed;
  private readonly report: (done: number, resumed?: boolean) => void;

  constructor(
    private readonly ctx: ClientContext,
    private readonly r: RepoRef,
    private readonly desc: Descriptor,
    private readonly o: { signal?: AbortSignal | undefined; tap?: BlobTap | undefined },
  ) {
    this.budget = new RetryBudget(ctx.retry);
    this.report = blobReporter(ctx.emit, { kind: 'blob', action: 'pull', ref: repoName(r), digest: desc.digest, total: desc.size });
    // the content check sees exactly the bytes on disk, in order, and restarts with the file
    this.check = new TapFeed(o.tap, (e) => new RegistryError('IMAGE_INVALID', `layer ${desc.digest}: ${(e as Error).message}`, { registry: r.registry, repository: r.repository, cause: e }));
  }

  async into(blobs: BlobStore): Promise<void> {
    const { partial } = await blobs.downloadPaths(this.desc.digest);
    const fh = await this.openPartial(partial);
    const flusher = new Flusher(fh);
    try {
      while (!(await this.transfer(fh, flusher, partial)));
      await this.check.end();
    } catch (e) {
      this.check.abort();
      await flusher.idle();
      await fh.close().catch(() => undefined);
      // Keep a partial download for the next run unless its content is known to be wrong.
      if (!(e instanceof RegistryError) || (e.code !== 'ABORTED' && e.code !== 'NETWORK' && e.code !== 'TIMEOUT')) await fsp.rm(partial, { force: true });
      throw e;
    }
    await flusher.idle();
    await fh.close();
    try {
      await blobs.commitDownload(partial, this.desc);
    } catch (e) {
      await fsp.rm(partial, { force: true });
      throw new RegistryError('STORE', `cannot add blob ${this.desc.digest} to the store: ${(e as Error).message}`, { registry: this.r.registry, repository: this.r.repository, cause: e });
    }
  }

  /** A partial download left by an earlier (killed) run: hash what is there and go on from its end. */
  private async openPartial(partial: string): Promise<FileHandle> {
    const st = await fsp.stat(partial).catch(() => undefined);
    try {
      if (st && st.size <= this.desc.size) {
        await hashFile(partial, this.hash, this.check);
        this.offset = st.size;
      } else if (st) await fsp.rm(partial, { force: true });
      this.resumed = this.offset > 0;
      // O_APPEND: after a truncate(0) (restart) writes go to the start again, never leave a hole.
      return await fsp.open(partial, 'a');
    } catch (e) {
      this.check.abort();
      throw e;
    }
  }

  /** One round: fetch what is missing and verify; true when the blob is complete and right. */
  private async transfer(fh: FileHandle, flusher: Flusher, partial: string): Promise<boolean> {
    if (this.offset < this.desc.size) {
      const res = await this.request(fh);
      if (!res) return false;
      if (this.resumed) this.report(this.offset, true);
      this.resumed = false;
      if (!(await this.receive(res, fh, flusher, partial))) return false;
    }
    return this.verify(fh);
  }

  private async restart(fh: FileHandle): Promise<void> {
    await fh.truncate(0);
    this.hash = createHash('sha256');
    this.offset = 0;
    this.check.restart();
  }

  /** GET the blob from the current offset; undefined when the download must start over first. */
  private async request(fh: FileHandle): Promise<HttpResponse | undefined> {
    const { r, desc, offset } = this;
    const res = await this.ctx.session(r.registry).request({
      method: 'GET',
      url: `/v2/${r.repository}/blobs/${desc.digest}`,
      repository: r.repository,
      scopes: [repoScope(r.repository, 'pull')],
      headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
      ...(this.o.signal ? { signal: this.o.signal } : {}),
    });
    if (res.status === 206 && offset > 0) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)/.exec(header(res, 'content-range') ?? '');
      if (!m || Number(m[1]) !== offset) {
        res.body.destroy();
        throw this.err('PROTOCOL', `blob ${desc.digest}: asked for bytes from ${offset}, got range "${header(res, 'content-range') ?? ''}"`);
      }
    } else if (res.status === 200) {
      if (offset > 0) await this.restart(fh); // the server ignored Range: start over
      const len = Number(header(res, 'content-length'));
      if (Number.isFinite(len) && header(res, 'content-length') !== undefined && len !== desc.size) {
        res.body.destroy();
        throw this.err('SIZE_MISMATCH', `blob ${desc.digest} is ${len} bytes at the registry, the manifest says ${desc.size}`);
      }
    } else if (res.status === 416 && offset > 0) {
      res.body.resume();
      await this.restart(fh);
      return undefined;
    } else {
      await this.ctx.session(r.registry).fail(res, `cannot download blob ${desc.digest}`, r.repository);
    }
    return res;
  }

  /**
   * Stream the body to the partial file in batches; only bytes on disk are hashed and counted, so
   * an interruption resumes exactly after them. False after an interruption that is retried.
   */
  private async receive(res: HttpResponse, fh: FileHandle, flusher: Flusher, partial: string): Promise<boolean> {
    const { desc } = this;
    const before = this.offset;
    let batch: Buffer[] = [];
    let batchBytes = 0;
    const flush = async (): Promise<void> => {
      if (!batchBytes) return;
      const bufs = batch;
      [batch, batchBytes] = [[], 0];
      await this.write(fh, bufs, partial);
      flusher.wrote(this.offset);
      this.report(this.offset);
    };
    try {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        if (this.offset + batchBytes + chunk.length > desc.size) {
          res.body.destroy();
          await this.restart(fh);
          throw this.err('SIZE_MISMATCH', `blob ${desc.digest} is larger than the ${desc.size} bytes its descriptor says`);
        }
        batch.push(chunk);
        batchBytes += chunk.length;
        if (batchBytes >= WRITE_BATCH) await flush();
      }
      await flush();
      if (this.offset < desc.size) throw Object.assign(new Error('connection closed before the blob ended'), { code: 'ECONNRESET' });
      return true;
    } catch (e) {
      await this.interrupted(e, this.offset > before);
      return false;
    }
  }

  private async write(fh: FileHandle, bufs: Buffer[], partial: string): Promise<void> {
    try {
      await fh.writev(bufs);
    } catch (e) {
      throw new RegistryError('STORE', `cannot write ${partial}: ${(e as Error).message}`, { registry: this.r.registry, repository: this.r.repository, cause: e });
    }
    for (const b of bufs) {
      this.hash.update(b);
      this.offset += b.length;
    }
    for (const b of bufs) await this.check.write(b);
  }

  /** A transfer broke off: rethrow what is final, else wait for the retry (the budget starts again after progress). */
  private async interrupted(e: unknown, progressed: boolean): Promise<void> {
    const { r, desc } = this;
    if (e instanceof RegistryError) throw e;
    if (isAbortError(e) || this.o.signal?.aborted) throw new RegistryError('ABORTED', `download of ${desc.digest} aborted`, { registry: r.registry, repository: r.repository, cause: e });
    if (!isRetriableNetworkError(e)) throw this.err('NETWORK', `download of blob ${desc.digest} failed: ${(e as Error).message}`, e);
    if (progressed) this.budget.progressed();
    const wait = this.budget.next();
    if (wait === undefined) throw this.err('NETWORK', `download of blob ${desc.digest} kept failing: ${(e as Error).message}`, e);
    this.resumed = true;
    await sleep(wait, this.o.signal).catch((a: unknown) => {
      throw new RegistryError('ABORTED', `download of ${desc.digest} aborted`, { registry: r.registry, repository: r.repository, cause: a });
    });
  }

  /** The digest of what is on disk: true when right; false to start over once after a resume. */
  private async verify(fh: FileHandle): Promise<boolean> {
    const got = `sha256:${this.hash.digest('hex')}` as Digest;
    if (got === this.desc.digest) return true;
    await fh.truncate(0);
    // Bytes joined across a resume may come from different attempts; retry once from scratch.
    if (!this.restartedAfterMismatch && this.budget.retried) {
      this.restartedAfterMismatch = true;
      this.hash = createHash('sha256');
      this.offset = 0;
      this.check.restart();
      return false;
    }
    throw this.err('DIGEST_MISMATCH', `blob ${this.desc.digest} downloaded from the registry hashes to ${got}`);
  }

  private err(code: 'DIGEST_MISMATCH' | 'SIZE_MISMATCH' | 'PROTOCOL' | 'NETWORK', msg: string, cause?: unknown): RegistryError {
    return new RegistryError(code, msg, { registry: this.r.registry, repository: this.r.repository, temporary: code === 'NETWORK', ...(cause !== undefined ? { cause } : {}) });
  }
}
