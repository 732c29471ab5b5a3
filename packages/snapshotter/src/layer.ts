import { PassThrough, Readable, type Duplex, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestingStream, layerMediaType, type BlobStore, type Descriptor, type Digest } from '@hoist/oci';
import { zstdCompressor } from './compress.js';
import { ParallelGzip } from './gzip.js';
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
  const diff = new DigestingStream();
  const { digest, size, stored: placed } = await blobs.writeThenStore(
    (out) =>
      pipeline(
        Readable.from(tarBytes(insideRoot(entries), opts), { objectMode: false, highWaterMark: 256 * 1024 }),
        diff,
        compressor(compression, opts.level),
        out,
        opts.signal ? { signal: opts.signal } : {},
      ),
    { prefix: 'layer' },
  );
  // names checked above, diff_id hashed in the same pass: later pushes need not re-read it
  const diffId = diff.digest;
  const stored = placed.then(() => blobs.noteVerifiedLayer(digest, diffId));
  stored.catch(() => undefined); // handled by whoever awaits it
  return {
    layer: { diffId, descriptor: { mediaType: opts.mediaType ?? layerMediaType('oci', compression), digest, size }, uncompressedSize: diff.size },
    stored,
  };
}
