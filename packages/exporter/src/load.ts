import type { ImageStore } from '@hoist/oci';
import { ExportError } from './errors.js';
import { loadDockerImages } from './load-docker.js';
import { loadOciImages } from './load-oci.js';
import { scanArchive } from './load-scan.js';
import type { LoadedImage } from './load-types.js';

export type { LoadedImage } from './load-types.js';

export interface LoadResult {
  format: 'docker' | 'oci';
  images: LoadedImage[];
}

/**
 * Load a docker-archive or an OCI layout tar (plain or compressed; detected from its content)
 * into the store. Every blob is verified on the way in; images are tagged only after every
 * blob of every image in the archive has landed and checked out — a bad archive tags nothing
 * (blobs it did store are left for `hoist prune`).
 */
export async function loadArchive(store: ImageStore, input: AsyncIterable<Buffer>, opts: { signal?: AbortSignal } = {}): Promise<LoadResult> {
  const scan = await scanArchive(store.blobs, input, opts);
  let format: LoadResult['format'];
  if (scan.files.has('index.json') && (scan.files.has('oci-layout') || !scan.files.has('manifest.json'))) format = 'oci';
  else if (scan.files.has('manifest.json')) format = 'docker';
  else {
    throw new ExportError('ARCHIVE_INVALID', 'the archive has neither manifest.json (docker-archive) nor index.json (OCI layout)', {
      hint: 'make one with `hoist save`, `docker save` or `skopeo copy ... docker-archive:FILE|oci-archive:FILE`',
    });
  }
  const images = format === 'oci' ? await loadOciImages(store, scan) : await loadDockerImages(store, scan);
  for (const img of images) for (const ref of img.refs) await store.tag(ref, img.descriptor);
  return { format, images };
}
