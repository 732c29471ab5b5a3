import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { constants as zc, crc32, deflateRaw, deflateRawSync, type ZlibOptions } from 'node:zlib';

export interface GzipOptions {
  /** zlib level 1-9 (default 6, as gzip). */
  level?: number;
  /** Uncompressed bytes per independently compressed block (default 256 KiB; pigz uses 128 KiB). */
  blockSize?: number;
  /** Blocks in flight on the libuv thread pool (default: 4 per CPU, at least 8). */
  concurrency?: number;
}

const WINDOW = 32 * 1024;
/** ParallelGzip's default block size: an input up to this long is one block. */
export const GZIP_BLOCK = 256 * 1024;

/**
 * Load zlib now (the CLI bundle loads Node built-ins on first use: ~2-4 ms the first time a
 * layer is compressed). A writable mount calls it while its mount command runs in a tool shell,
 * so that the first commit does not pay it on the critical path (issue 16).
 */
export function loadCompression(): void {
  void zc.Z_DEFAULT_COMPRESSION;
}
// gzip header: magic, deflate, no flags, mtime 0, no extra flags, OS 255 (unknown) — as Go writes it.
const HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff]);

function trailer(crc: number, isize: number): Buffer {
  const t = Buffer.alloc(8);
  t.writeUInt32LE(crc >>> 0, 0);
  t.writeUInt32LE(isize >>> 0, 4);
  return t;
}

/**
 * What ParallelGzip (default block size) writes for `data` of at most GZIP_BLOCK bytes, made at
 * once on the calling thread: one block, no dictionary, the final flush. For a small layer a
 * trip through the stream and the thread pool costs more than the deflate (issue 16).
 */
export function gzipOneBlock(data: Buffer, level = 6): Buffer {
  if (data.length > GZIP_BLOCK) throw new RangeError(`gzipOneBlock: ${data.length} bytes is over one block (${GZIP_BLOCK})`);
  const body = deflateRawSync(data, { level, finishFlush: zc.Z_FINISH });
  return Buffer.concat([HEADER, body, trailer(crc32(data), data.length)]);
}

function deflateBlock(data: Buffer, opts: ZlibOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => deflateRaw(data, opts, (err, out) => (err ? reject(err) : resolve(out))));
}

/**
 * gzip with parallel compression, the way pigz does it: the input is cut into fixed blocks,
 * each block is raw-deflated on the thread pool with the previous 32 KiB as its dictionary and
 * ended with a sync flush (byte-aligned), the last one with a final block; the pieces are
 * concatenated in order into ONE gzip member with the CRC-32 and size of the whole input.
 * The output depends only on the input, the level and the block size — not on the number of
 * threads or on timing — so layer digests are reproducible.
 */
export class ParallelGzip extends Transform {
  private readonly level: number;
  private readonly blockSize: number;
  private readonly concurrency: number;
  private chunks: Buffer[] = [];
  private pending = 0;
  private dict: Buffer | undefined;
  private crc = 0;
  private isize = 0;
  private started = false;
  private readonly inflight: Promise<Buffer>[] = [];

  constructor(opts: GzipOptions = {}) {
    super({ readableHighWaterMark: 1024 * 1024, writableHighWaterMark: 256 * 1024 });
    this.level = opts.level ?? 6;
    this.blockSize = Math.max(opts.blockSize ?? GZIP_BLOCK, WINDOW);
    this.concurrency = Math.max(1, opts.concurrency ?? Math.max(8, 4 * availableParallelism()));
  }

  private submit(block: Buffer, last: boolean): void {
    this.crc = crc32(block, this.crc);
    this.isize = (this.isize + block.length) % 0x1_0000_0000;
    // one output chunk per block: every extra chunk is another thread-pool round trip
    const opts: ZlibOptions = { level: this.level, finishFlush: last ? zc.Z_FINISH : zc.Z_SYNC_FLUSH, chunkSize: this.blockSize + (this.blockSize >> 6) + 1024 };
    if (this.dict) opts.dictionary = this.dict;
    this.inflight.push(deflateBlock(block, opts));
    this.dict = block.length >= WINDOW ? block.subarray(block.length - WINDOW) : Buffer.concat([this.dict ?? Buffer.alloc(0), block]).subarray(-WINDOW);
  }

  private takeBlock(n: number): Buffer {
    const head = this.chunks[0];
    if (head && head.length >= n) {
      // zero copy: upstream never reuses the buffers it hands over
      this.chunks[0] = head.subarray(n);
      if (this.chunks[0].length === 0) this.chunks.shift();
      this.pending -= n;
      return head.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0]!;
      const take = Math.min(c.length, n - off);
      c.copy(out, off, 0, take);
      off += take;
      if (take === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(take);
    }
    this.pending -= n;
    return out;
  }

  private async drainTo(limit: number): Promise<void> {
    while (this.inflight.length > limit) this.push(await this.inflight.shift()!);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (!this.started) {
      this.started = true;
      this.push(HEADER);
    }
    this.chunks.push(chunk);
    this.pending += chunk.length;
    // keep one block back so the final block is always the last `submit`
    while (this.pending > this.blockSize) this.submit(this.takeBlock(this.blockSize), false);
    this.drainTo(this.concurrency - 1).then(() => cb(), cb);
  }

  override _flush(cb: TransformCallback): void {
    if (!this.started) {
      this.started = true;
      this.push(HEADER);
    }
    this.submit(this.takeBlock(this.pending), true);
    this.drainTo(0).then(() => {
      this.push(trailer(this.crc, this.isize));
      cb();
    }, cb);
  }
}
