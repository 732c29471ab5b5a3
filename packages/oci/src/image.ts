import { canonicalJson } from './json.js';
import { OciError } from './errors.js';
import { MediaType } from './media-types.js';
import type { BlobStore } from './blob-store.js';
import { sha256, type Digest } from './digest.js';
import type { ContainerConfig, Descriptor, History, ImageConfig, Manifest, Platform } from './types.js';

export type ImageFormat = 'oci' | 'docker';

/** An image being built: plain data, changed only by returning new values. */
export interface Image {
  readonly config: ImageConfig;
  readonly layers: readonly Descriptor[];
}

export function emptyImage(platform: Platform): Image {
  const config: ImageConfig = {
    architecture: platform.architecture,
    os: platform.os,
    config: {},
    rootfs: { type: 'layers', diff_ids: [] },
    history: [],
  };
  if (platform.variant) config.variant = platform.variant;
  return { config, layers: [] };
}

export function appendLayer(img: Image, layer: Descriptor, diffId: Digest, history: History): Image {
  return {
    layers: [...img.layers, layer],
    config: {
      ...img.config,
      rootfs: { type: 'layers', diff_ids: [...img.config.rootfs.diff_ids, diffId] },
      history: [...(img.config.history ?? []), { ...history, empty_layer: undefined }].map(stripUndefined),
    },
  };
}

export function appendHistory(img: Image, history: History): Image {
  return { ...img, config: { ...img.config, history: [...(img.config.history ?? []), { ...history, empty_layer: true }] } };
}

export function withContainerConfig(img: Image, update: (c: ContainerConfig) => ContainerConfig): Image {
  return { ...img, config: { ...img.config, config: update({ ...(img.config.config ?? {}) }) } };
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** Write the config and manifest blobs of an image whose layers are already in `blobs`. */
export async function writeImage(
  blobs: BlobStore,
  img: Image,
  opts: { format?: ImageFormat; annotations?: Record<string, string> } = {},
): Promise<{ descriptor: Descriptor; manifest: Manifest; configDigest: Digest }> {
  const format = opts.format ?? 'oci';
  const configBytes = canonicalJson(img.config);
  const configDesc: Descriptor = { mediaType: format === 'oci' ? MediaType.OciConfig : MediaType.DockerConfig, digest: sha256(configBytes), size: configBytes.length };
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: format === 'oci' ? MediaType.OciManifest : MediaType.DockerManifest,
    config: configDesc,
    layers: img.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  if (opts.annotations && Object.keys(opts.annotations).length > 0) manifest.annotations = opts.annotations;
  // one fsync round for both; the config is in place before the manifest that names it
  const [, descriptor] = await blobs.putBytesInOrder([
    { data: configBytes, mediaType: configDesc.mediaType },
    { data: canonicalJson(manifest), mediaType: manifest.mediaType! },
  ]);
  return { descriptor: descriptor!, manifest, configDigest: configDesc.digest };
}

/** A layer blob of an image with the diff_id its config gives it. */
export interface LayerPair {
  layer: Descriptor;
  diffId: Digest;
  /** 0-based positions of the blob in the manifest's layers (a blob may be listed twice). */
  positions: number[];
}

/**
 * Pair a manifest's layers with its config's diff_ids, one entry per distinct blob. An image
 * whose counts differ, or that gives one blob two diff_ids, is invalid (as Docker refuses it).
 */
export function pairLayers(manifest: Pick<Manifest, 'layers'>, config: Pick<ImageConfig, 'rootfs'>): LayerPair[] {
  const ids = config.rootfs.diff_ids;
  if (ids.length !== manifest.layers.length) {
    throw new OciError('MANIFEST_INVALID', `the manifest lists ${manifest.layers.length} layer(s) but the image config ${ids.length} diff_id(s)`);
  }
  const byBlob = new Map<Digest, LayerPair>();
  manifest.layers.forEach((layer, i) => {
    const diffId = ids[i]!;
    const seen = byBlob.get(layer.digest);
    if (!seen) byBlob.set(layer.digest, { layer, diffId, positions: [i] });
    else if (seen.diffId !== diffId) {
      throw new OciError('MANIFEST_INVALID', `layer ${layer.digest} is listed twice with different diff_ids (${seen.diffId}, ${diffId})`);
    } else seen.positions.push(i);
  });
  return [...byBlob.values()];
}
