import { createHash } from 'node:crypto';
import { layerCompression, type BlobStore, type Compression, type Descriptor, type Digest, type Layer } from '@hoist/oci';
import { decompress } from '@hoist/snapshotter';
import { ExportError, throwIfAborted } from './errors.js';

/**
 * The uncompressed bytes of a layer (gzip, zstd or none, detected from the bytes), wherever its
 * blob is: the blob is verified against its digest, and the uncompressed stream against its
 * diff_id (and `size` when known) — the error comes at the end of the stream, so callers write
 * into temp files they discard on error.
 */
export async function* uncompressedLayer(layer: Layer, opts: { size?: number; signal?: AbortSignal } = {}): AsyncGenerator<Buffer> {
  const desc = layer.descriptor;
  const diffId = layer.diffId;
  const d = await decompress(await layer.open(opts.signal ? { signal: opts.signal } : {}));
  const hash = createHash('sha256');
  let n = 0;
  let ok = false;
  try {
    for await (const chunk of d.stream) {
      throwIfAborted(opts.signal);
      const b = chunk as Buffer;
      n += b.length;
      if (opts.size !== undefined && n > opts.size) break;
      hash.update(b);
      yield b;
    }
    const got = `sha256:${hash.digest('hex')}`;
    if ((opts.size !== undefined && n !== opts.size) || got !== diffId) {
      throw new ExportError('DIFF_ID_MISMATCH', `layer ${desc.digest} uncompresses to ${got} (${n} bytes), the image config says ${diffId}`, {
        hint: 'the layer blob does not belong to this image; run `hoist fsck`',
      });
    }
    ok = true;
  } finally {
    if (!ok) d.cancel();
  }
}

/**
 * The size of a layer's uncompressed tar, checking its diff_id on the way (one full read;
 * free for uncompressed layers, whose digest is their diff_id).
 */
export async function measureLayer(layer: Layer, signal?: AbortSignal): Promise<number> {
  const desc = layer.descriptor;
  if (layerCompression(desc.mediaType) === 'none' && desc.digest === layer.diffId) return desc.size;
  let n = 0;
  for await (const b of uncompressedLayer(layer, signal ? { signal } : {})) n += b.length;
  return n;
}

/** The diff_id of a stored layer blob (decompressed and hashed; the blob itself verified), and its compression. */
export async function diffIdOf(blobs: BlobStore, desc: Descriptor, signal?: AbortSignal): Promise<{ diffId: Digest; size: number; compression: Compression }> {
  const d = await decompress(blobs.get(desc));
  const hash = createHash('sha256');
  let n = 0;
  try {
    for await (const chunk of d.stream) {
      throwIfAborted(signal);
      n += (chunk as Buffer).length;
      hash.update(chunk as Buffer);
    }
  } catch (e) {
    d.cancel();
    throw e;
  }
  return { diffId: `sha256:${hash.digest('hex')}` as Digest, size: n, compression: d.kind };
}
