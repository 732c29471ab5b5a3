import type { Descriptor } from '@hoist/oci';

/** An image `loadArchive` stored. */
export interface LoadedImage {
  descriptor: Descriptor;
  /** Full references it was tagged with (none: untagged, find it by digest). */
  refs: string[];
  /**
   * The manifest is the one the archive was made from (OCI layouts always; docker-archives
   * written by hoist when the layers recompress to the same blobs). Otherwise a new manifest
   * over recompressed layers: same config (image ID), another manifest digest — as docker load.
   */
  exact: boolean;
}
