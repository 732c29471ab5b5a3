import { PassThrough, Readable, type Duplex, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestingStream, layerMediaType, sha256, type BlobStore, type Descriptor, type Digest } from '@hoist/oci';
import { zstdCompressor } from './compress.js';
import { GZIP_BLOCK, ParallelGzip, gzipOneBlock } from './gzip.js';
import { throwIfAborted } from './errors.js';
import { normalizeEntryName } from './safe-path.js';
import { readXattrsTree } from './sys.js';
import { tarBytes, type LayerEntry, type TarWriteOptions } from './tar/writer.js';
import { walkTree } from './walk.js';

export type LayerCompression = 'gzip' | 'zstd' | 'none';

export interface WriteLayerOptions extends TarWriteOptions {
  compression?: LayerCompression;
  /** gzip 1-9 (default 6) or zstd 1-19 (default 3). */
  level?: number;
  /** Media type for the descriptor (default: the OCI layer type for the compression). */
  mediaType?: string;
}

export interface WrittenLayer {
  diffId: Digest;
  descriptor: Descriptor;
  /** Size of the uncompressed tar. */
  uncompressedSize: number;
}

export interface LayerTarOptions extends TarWriteOptions {
  /** Treat `dir` as an overlay upper/snapshot dir (whiteouts, opaque dirs); default false. */
  overlay?: boolean;
}

/**
 * The layer tar of a directory tree, as a stream: every object under `dir` (for an overlay
 * upper dir, exactly the diff). Sorted, normalised, reproducible.
 */
export function layerTar(dir: string, opts: LayerTarOptions = {}): Readable {
  async function* gen(): AsyncGenerator<Buffer> {
    const xattrs = await readXattrsTree(dir);
    yield* tarBytes(walkTree(dir, xattrs, { overlay: opts.overlay ?? false, ...(opts.signal ? { signal: opts.signal } : {}) }), opts);
  }
  return Readable.from(gen(), { objectMode: false, highWaterMark: 256 * 1024 });
}

function compressor(c: LayerCompression, level: number | undefined): Transform | Duplex {
  if (c === 'gzip') return new ParallelGzip(level !== undefined ? { level } : {});
  if (c === 'zstd') return zstdCompressor(level ?? 3);
  return new PassThrough();
}

/** Entries whose names stay inside the root (so the layer written from them is safe to record as verified). */
async function* insideRoot(entries: AsyncIterable<LayerEntry>): AsyncGenerator<LayerEntry> {
  for await (const e of entries) {
    normalizeEntryName(e.kind === 'opaque' ? e.dir : e.name);
    yield e;
  }
}

/**
 * Write a layer in ONE pass: entries -> tar bytes -> diff_id hash -> compression -> blob temp
 * file (hashing the compressed bytes) -> atomic rename into the blob store.
 */
export async function writeLayer(blobs: BlobStore, entries: AsyncIterable<LayerEntry>, opts: WriteLayerOptions = {}): Promise<WrittenLayer> {
  const { layer, stored } = await writeLayerThenStore(blobs, entries, opts);
  await stored;
  return layer;
}

/**
 * writeLayer that answers once the layer is written and hashed (its diff_id and descriptor
 * known); the blob's fsync, its rename into place and the note that it was verified go on
 * meanwhile (`stored`, see BlobStore.writeThenStore): a commit makes the snapshot in the meantime.
 */
export async function writeLayerThenStore(blobs: BlobStore, entries: AsyncIterable<LayerEntry>, opts: WriteLayerOptions = {}): Promise<{ layer: WrittenLayer; stored: Promise<void> }> {
  const compression = opts.compression ?? 'gzip';
  const tar = tarBytes(insideRoot(entries), opts);
  let head: Buffer[] = [];
  if (compression !== 'zstd') {
    const start = await smallTar(tar, GZIP_BLOCK);
    if ('whole' in start) return storeSmall(blobs, start.whole, { ...opts, compression });
    head = start.head;
  }
  const diff = new DigestingStream();
  const { digest, size, stored: placed } = await blobs.writeThenStore(
    (out) =>
      pipeline(
        Readable.from(resume(head, tar), { objectMode: false, highWaterMark: 256 * 1024 }),
        diff,
        compressor(compression, opts.level),
        out,
        opts.signal ? { signal: opts.signal } : {},
      ),
    { prefix: 'layer' },
  );
  // names checked above, diff_id hashed in the same pass: later pushes need not re-read it
  return written(blobs, { diffId: diff.digest, uncompressedSize: diff.size, digest, size, placed }, opts.mediaType ?? layerMediaType('oci', compression));
}

/**
 * The whole tar when it is at most `limit` bytes, else the chunks read so far (the rest is still
 * in `tar`). A layer that small (most COPY and RUN steps of a rebuild) is hashed, compressed and
 * written at once (storeSmall), not through a stream pipeline and the thread pool (issue 16).
 */
async function smallTar(tar: AsyncGenerator<Buffer>, limit: number): Promise<{ whole: Buffer } | { head: Buffer[] }> {
  const head: Buffer[] = [];
  let n = 0;
  for (;;) {
    const r = await tar.next();
    if (r.done) return { whole: Buffer.concat(head, n) };
    head.push(r.value);
    n += r.value.length;
    if (n > limit) return { head };
  }
}

async function* resume(head: Buffer[], rest: AsyncGenerator<Buffer>): AsyncGenerator<Buffer> {
  yield* head;
  yield* rest;
}

/** A layer whose tar is in memory: the same bytes the streaming path writes (one gzip block). */
async function storeSmall(blobs: BlobStore, tar: Buffer, opts: WriteLayerOptions & { compression: 'gzip' | 'none' }): Promise<{ layer: WrittenLayer; stored: Promise<void> }> {
  throwIfAborted(opts.signal);
  const blob = opts.compression === 'gzip' ? gzipOneBlock(tar, opts.level ?? 6) : tar;
  const { digest, size, stored: placed } = await blobs.putThenStore(blob, { prefix: 'layer' });
  return written(blobs, { diffId: sha256(tar), uncompressedSize: tar.length, digest, size, placed }, opts.mediaType ?? layerMediaType('oci', opts.compression));
}

interface Written {
  diffId: Digest;
  uncompressedSize: number;
  digest: Digest;
  size: number;
  placed: Promise<void>;
}

function written(blobs: BlobStore, w: Written, mediaType: string): { layer: WrittenLayer; stored: Promise<void> } {
  const stored = w.placed.then(() => blobs.noteVerifiedLayer(w.digest, w.diffId));
  stored.catch(() => undefined); // handled by whoever awaits it
  return { layer: { diffId: w.diffId, descriptor: { mediaType, digest: w.digest, size: w.size }, uncompressedSize: w.uncompressedSize }, stored };
}
