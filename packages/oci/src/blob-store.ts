import { chmodSync, createReadStream, createWriteStream, mkdirSync, promises as fsp, readFileSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestingStream, VerifyingStream, digestHex, isDigest, sha256, type Digest } from './digest.js';
import { writeFileAtomic } from './fsutil.js';
import { OciError } from './errors.js';
import type { Descriptor } from './types.js';
import { MAX_JSON_BYTES } from './json.js';

export interface PutOptions {
  /** When given, the blob must have this digest (and size): otherwise nothing is stored. */
  expected?: { digest: Digest; size?: number };
  signal?: AbortSignal;
}

export interface BlobStoreOptions {
  /**
   * Remember the blobs found (or written) here, so that asking again costs no stat (issue 16: a
   * cached build asks about the same few blobs twenty times). Only for a store whose blobs
   * nobody deletes while this process uses it: the local store under a shared lease, which
   * `hoist prune` (the only deleter, holding the exclusive lease) waits for.
   */
  rememberFound?: boolean;
}

/**
 * Content-addressed blobs in an OCI image layout (`blobs/sha256/<hex>`). Every write goes to a
 * temp file, is hashed while written, fsynced and renamed into place: a reader never sees a
 * partial blob. Every read is verified against the digest and size it was asked for.
 */
export class BlobStore {
  readonly blobsDir: string;
  readonly tmpDir: string;
  /** What layer blobs were verified to be (`verified/<hex>`: their diff_id); goes with the blob. */
  readonly verifiedDir: string;
  /** Sizes of the blobs found or written here, when blobs are known to stay (see BlobStoreOptions). */
  private readonly found: Map<Digest, number> | undefined;
  constructor(
    readonly root: string,
    opts: BlobStoreOptions = {},
  ) {
    this.blobsDir = path.join(root, 'blobs', 'sha256');
    this.tmpDir = path.join(root, 'tmp');
    this.verifiedDir = path.join(root, 'verified');
    if (opts.rememberFound) this.found = new Map();
  }

  path(digest: Digest): string {
    return path.join(this.blobsDir, digestHex(digest));
  }

  /**
   * Synchronous on purpose (issue 16): a cached build asks about a blob for each step it finds
   * in the cache, one after the other; a stat on the store's own disk costs microseconds, its
   * awaited form a promise and a thread-pool round trip (see FileCacheStore.get in the builder
   * for the numbers).
   */
  async stat(digest: Digest): Promise<{ size: number } | undefined> {
    const known = this.found?.get(digest);
    if (known !== undefined) return { size: known };
    try {
      const st = statSync(this.path(digest));
      this.found?.set(digest, st.size);
      return { size: st.size };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async has(digest: Digest): Promise<boolean> {
    return (await this.stat(digest)) !== undefined;
  }

  /** A stream of the blob that errors unless its bytes match `desc.digest` and `desc.size`. */
  get(desc: Pick<Descriptor, 'digest' | 'size'>): Readable {
    const src = createReadStream(this.path(desc.digest));
    const verify = new VerifyingStream(desc.digest, desc.size);
    src.on('error', (e: NodeJS.ErrnoException) =>
      verify.destroy(e.code === 'ENOENT' ? new OciError('BLOB_UNKNOWN', `blob ${desc.digest} is not in the store ${this.root}`) : e),
    );
    return src.pipe(verify);
  }

  async getBytes(desc: Pick<Descriptor, 'digest' | 'size'>, max = MAX_JSON_BYTES): Promise<Buffer> {
    if (desc.size > max) throw new OciError('TOO_LARGE', `blob ${desc.digest} is ${desc.size} bytes, over ${max}`);
    let data: Buffer;
    try {
      // synchronous (issue 16): JSON blobs, bounded by `max` before any read; every build reads
      // its bases' manifests and configs, and an awaited readFile is four thread-pool round
      // trips (open, stat, read, close) where this is microseconds for a few kilobytes
      data = readFileSync(this.path(desc.digest));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new OciError('BLOB_UNKNOWN', `blob ${desc.digest} is not in the store ${this.root}`);
      throw e;
    }
    if (data.length !== desc.size) throw new OciError('SIZE_MISMATCH', `blob ${desc.digest}: ${data.length} bytes on disk, descriptor says ${desc.size}`);
    if (sha256(data) !== desc.digest) throw new OciError('DIGEST_MISMATCH', `blob ${desc.digest} on disk does not match its digest`);
    return data;
  }

  /** A fresh temp path inside the store (same filesystem as the blobs, so rename is atomic). */
  private async tempPath(prefix = 'blob'): Promise<string> {
    // synchronous, as are place()'s mkdir and chmod: one metadata call each, where an awaited one
    // waits a turn of the thread pool, behind a build's background removals (issue 16)
    mkdirSync(this.tmpDir, { recursive: true });
    return path.join(this.tmpDir, `${prefix}-${process.pid}-${randomBytes(8).toString('hex')}`);
  }

  /** Store a stream; the store computes the digest. Idempotent. */
  async put(src: Readable, opts: PutOptions = {}): Promise<{ digest: Digest; size: number }> {
    return this.write((out) => pipeline(src, out, opts.signal ? { signal: opts.signal } : {}), opts);
  }

  /**
   * Store what `fill` writes into the writable it is given (the end of the caller's pipeline:
   * a layer being tarred and compressed, say): the store hashes the bytes as they arrive and
   * moves the finished blob into place. A failed `fill` leaves nothing behind.
   */
  async write(fill: (out: Writable) => Promise<void>, opts: PutOptions & { prefix?: string } = {}): Promise<{ digest: Digest; size: number }> {
    const w = await this.writeThenStore(fill, opts);
    await w.stored;
    return { digest: w.digest, size: w.size };
  }

  /**
   * write() that answers as soon as the bytes are written and hashed: the fsync and the rename
   * into place go on meanwhile (`stored`; on failure the temp file is removed). Until `stored`
   * resolves the blob is not in the store: nothing may refer to it durably (a cache record, a
   * tagged image) or read it before. A layer commit uses it to take the fsync off the step's path.
   */
  async writeThenStore(fill: (out: Writable) => Promise<void>, opts: PutOptions & { prefix?: string } = {}): Promise<{ digest: Digest; size: number; stored: Promise<void> }> {
    const tmp = await this.tempPath(opts.prefix);
    const hasher = new DigestingStream(opts.expected?.size ?? Number.POSITIVE_INFINITY);
    const written = pipeline(hasher, createWriteStream(tmp, { flags: 'wx' }));
    try {
      await Promise.all([fill(hasher), written]);
    } catch (e) {
      hasher.destroy();
      await written.catch(() => undefined);
      await fsp.rm(tmp, { force: true });
      throw e;
    }
    return { digest: hasher.digest, size: hasher.size, stored: this.adoptLater(tmp, hasher.digest, hasher.size, opts) };
  }

  /**
   * writeThenStore for bytes already in memory (a small layer, compressed at once): written
   * with one synchronous call, where a write stream takes thread-pool turns to open, write and
   * close (issue 16); the fsync and rename go on as there.
   */
  async putThenStore(data: Uint8Array, opts: PutOptions & { prefix?: string } = {}): Promise<{ digest: Digest; size: number; stored: Promise<void> }> {
    const tmp = await this.tempPath(opts.prefix);
    const digest = sha256(data);
    try {
      writeFileSync(tmp, data, { flag: 'wx' });
    } catch (e) {
      await fsp.rm(tmp, { force: true });
      throw e;
    }
    return { digest, size: data.length, stored: this.adoptLater(tmp, digest, data.length, opts) };
  }

  /** adopt() going on in the background: the temp file is removed if it fails. */
  private adoptLater(tmp: string, digest: Digest, size: number, opts: PutOptions): Promise<void> {
    const stored = this.adopt(tmp, digest, size, opts).then(
      () => undefined,
      async (e: unknown) => {
        await fsp.rm(tmp, { force: true });
        throw e;
      },
    );
    stored.catch(() => undefined); // handled by whoever awaits it (see writeThenStore)
    return stored;
  }

  /**
   * Where a download of `digest` is kept while it comes in (`pull-<hex>.partial`, resumed by the
   * next run after a kill) and the lock file that lets one process at a time fetch it.
   */
  async downloadPaths(digest: Digest): Promise<{ partial: string; lock: string }> {
    await fsp.mkdir(this.tmpDir, { recursive: true });
    const base = path.join(this.tmpDir, `pull-${digestHex(digest)}`);
    return { partial: `${base}.partial`, lock: `${base}.lock` };
  }

  /** Move a finished download into place: the downloader hashed it while it came in and found `desc`. */
  async commitDownload(partial: string, desc: Pick<Descriptor, 'digest' | 'size'>): Promise<void> {
    await this.adopt(partial, desc.digest, desc.size, { expected: { digest: desc.digest, size: desc.size } });
  }

  async putBytes(data: Uint8Array, mediaType: string): Promise<Descriptor> {
    const digest = sha256(data);
    if (!(await this.has(digest))) {
      const tmp = await this.tempPath();
      try {
        await fsp.writeFile(tmp, data, { flag: 'wx' });
        await this.adopt(tmp, digest, data.length, {});
      } catch (e) {
        await fsp.rm(tmp, { force: true });
        throw e;
      }
    }
    return { mediaType, digest, size: data.length };
  }

  /**
   * Move a finished temp file (written by the caller, who already hashed it) into place.
   * Verifies against `opts.expected`; fsyncs before the rename.
   */
  private async adopt(tmp: string, digest: Digest, size: number, opts: PutOptions = {}): Promise<{ digest: Digest; size: number }> {
    const exp = opts.expected;
    if (exp && exp.digest !== digest) throw new OciError('DIGEST_MISMATCH', `blob digest mismatch: expected ${exp.digest}, got ${digest}`);
    if (exp?.size !== undefined && exp.size !== size) throw new OciError('SIZE_MISMATCH', `blob ${digest}: expected ${exp.size} bytes, got ${size}`);
    await syncFile(tmp);
    await this.place(tmp, digest, size);
    return { digest, size };
  }

  /** Move a temp file that is on disk (fsynced) into place as blob `digest` (of `size` bytes). */
  private async place(tmp: string, digest: Digest, size: number): Promise<void> {
    mkdirSync(this.blobsDir, { recursive: true });
    chmodSync(tmp, 0o644);
    await fsp.rename(tmp, this.path(digest));
    this.found?.set(digest, size);
  }

  /**
   * putBytes for several small blobs (an image's config and manifest): all are written, their
   * fsyncs run side by side (the filesystem's journal commits them together, where one after
   * another paid a commit each), then each is renamed into place IN THE ORDER GIVEN, so a blob
   * that refers to an earlier one (a manifest to its config) never shows without it.
   */
  async putBytesInOrder(items: ReadonlyArray<{ data: Uint8Array; mediaType: string }>): Promise<Descriptor[]> {
    const descs = items.map(({ data, mediaType }) => ({ mediaType, digest: sha256(data), size: data.length }));
    const todo: Array<{ tmp: string; digest: Digest; size: number }> = [];
    try {
      for (const [i, it] of items.entries()) {
        const digest = descs[i]!.digest;
        if ((await this.has(digest)) || todo.some((t) => t.digest === digest)) continue;
        const tmp = await this.tempPath();
        todo.push({ tmp, digest, size: it.data.length });
        // a config or manifest, a few KiB: one synchronous call, not four thread-pool turns (issue 16)
        writeFileSync(tmp, it.data, { flag: 'wx' });
      }
      await Promise.all(todo.map((t) => syncFile(t.tmp)));
      for (const t of todo) await this.place(t.tmp, t.digest, t.size);
    } catch (e) {
      await Promise.all(todo.map((t) => fsp.rm(t.tmp, { force: true })));
      throw e;
    }
    return descs;
  }

  async delete(digest: Digest): Promise<void> {
    this.found?.delete(digest);
    await fsp.rm(this.path(digest), { force: true });
    await fsp.rm(path.join(this.verifiedDir, digestHex(digest)), { force: true });
  }

  /**
   * Remember that layer blob `digest` was read in full and found to be a well-formed layer,
   * safe to unpack, whose uncompressed content hashes to `diffId` (as containerd labels content
   * with `containerd.io/uncompressed`). Both are facts about the blob's bytes, so they hold as
   * long as the digest does: later checks of the same blob need not decompress it again.
   */
  async noteVerifiedLayer(digest: Digest, diffId: Digest): Promise<void> {
    // a cache of a check (verifiedDiffId ignores a torn note; a lost one is checked again): no fsync
    await writeFileAtomic(path.join(this.verifiedDir, digestHex(digest)), `${diffId}\n`, { sync: false });
  }

  /** The diff_id recorded by noteVerifiedLayer, if any. */
  async verifiedDiffId(digest: Digest): Promise<Digest | undefined> {
    const text = await fsp.readFile(path.join(this.verifiedDir, digestHex(digest)), 'utf8').catch(() => undefined);
    const id = text?.trim();
    return id !== undefined && isDigest(id) ? id : undefined;
  }

  async *list(): AsyncGenerator<Digest> {
    let names: string[];
    try {
      names = await fsp.readdir(this.blobsDir);
    } catch {
      return;
    }
    for (const n of names) if (/^[a-f0-9]{64}$/.test(n)) yield `sha256:${n}` as Digest;
  }
}

async function syncFile(file: string): Promise<void> {
  const fh = await fsp.open(file, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
