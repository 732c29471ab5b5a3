import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestingStream, MediaType, type BlobStore, type Descriptor, type Digest } from '@hoist/oci';
import { ParallelGzip, decompress, readXattrsTree, walkTree, writeLayer } from '@hoist/snapshotter';

export interface ImportedLayer {
  descriptor: Descriptor;
  diffId: Digest;
}

/** A root filesystem directory as one reproducible gzip layer (sorted, normalised headers). */
export async function importDirectoryLayer(dir: string, blobs: BlobStore, opts: { sourceDateEpoch?: number; owner?: { uid: number; gid: number } } = {}): Promise<ImportedLayer> {
  const xattrs = await readXattrsTree(dir);
  const w = await writeLayer(blobs, walkTree(dir, xattrs, { overlay: false }), { compression: 'gzip', ...opts });
  return { descriptor: w.descriptor, diffId: w.diffId };
}

/** A tarball (plain, gzip or zstd) as one gzip layer; its entries are kept as they are. */
export async function importTarballLayer(file: string, blobs: BlobStore): Promise<ImportedLayer> {
  const { stream } = await decompress(createReadStream(file));
  const diff = new DigestingStream();
  const blob = await blobs.write((out) => pipeline(Readable.from(stream), diff, new ParallelGzip(), out), { prefix: 'import' });
  return { descriptor: { mediaType: MediaType.OciLayerGzip, digest: blob.digest, size: blob.size }, diffId: diff.digest };
}
