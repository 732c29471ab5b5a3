/** The SBOM of an image: its layers read once, its package databases scanned, SPDX 2.3 out. */
import { StoreLayer, type BlobStore, type Digest, type ImageConfig, type Layer, type Manifest } from '@hoist/oci';
import { uncompressedLayer } from '../../layer-data.js';
import { collectFiles, type CollectLimits } from './collect.js';
import { scanFiles } from './scan.js';
import { spdxDocument } from './spdx.js';
import type { FoundPackage } from './types.js';

export interface ImageSbomOptions {
  blobs: BlobStore;
  manifest: Manifest;
  config: ImageConfig;
  /** The image manifest's digest (the document namespace derives from it). */
  digest: Digest;
  name: string;
  created: Date;
  toolVersion: string;
  /** The image's layers wherever each blob is (a lazy result's are not all in `blobs`); default: `blobs`. */
  layers?: readonly Layer[];
  limits?: CollectLimits;
  signal?: AbortSignal;
}

async function* layerStreams(o: ImageSbomOptions): AsyncGenerator<AsyncIterable<Buffer>> {
  const diffIds = o.config.rootfs.diff_ids;
  const layers = o.layers ?? o.manifest.layers.map((l, i) => new StoreLayer(o.blobs, l, diffIds[i]!));
  for (const l of layers) yield uncompressedLayer(l, o.signal ? { signal: o.signal } : {});
}

/** The packages of an image (its final filesystem). */
export async function imagePackages(o: ImageSbomOptions): Promise<{ packages: FoundPackage[]; skipped: string[] }> {
  const c = await collectFiles(layerStreams(o), o.limits ?? {});
  return { packages: scanFiles(c.files), skipped: c.skipped };
}

/** The SPDX document of an image. */
export async function imageSbom(o: ImageSbomOptions): Promise<Record<string, unknown>> {
  const { packages } = await imagePackages(o);
  return spdxDocument(packages, { name: o.name, namespace: `https://hoist.invalid/spdx/${o.digest.slice('sha256:'.length)}`, created: o.created, toolVersion: o.toolVersion });
}
