/**
 * BuildKit's attestation storage: per platform image, an OCI image manifest whose layers are
 * in-toto statements (`application/vnd.in-toto+json`, annotated with their predicate type),
 * listed in the image index with platform `unknown/unknown` and the annotations
 * `vnd.docker.reference.type: attestation-manifest` and `vnd.docker.reference.digest: <image>`.
 */
import { canonicalJson, MediaType, type BlobStore, type Descriptor, type ImageIndex, type Platform } from '@hoist/oci';
import type { Statement } from './intoto.js';

export const INTOTO_MEDIA_TYPE = 'application/vnd.in-toto+json';
export const PREDICATE_TYPE_ANNOTATION = 'in-toto.io/predicate-type';
export const REFERENCE_TYPE_ANNOTATION = 'vnd.docker.reference.type';
export const REFERENCE_DIGEST_ANNOTATION = 'vnd.docker.reference.digest';
export const ATTESTATION_MANIFEST = 'attestation-manifest';
export const UNKNOWN_PLATFORM: Platform = { os: 'unknown', architecture: 'unknown' };

/** Whether an index entry is an attestation manifest (and not an image to run or build on). */
export function isAttestationManifest(d: Pick<Descriptor, 'annotations' | 'platform'>): boolean {
  return d.annotations?.[REFERENCE_TYPE_ANNOTATION] === ATTESTATION_MANIFEST || (d.platform?.os === 'unknown' && d.platform.architecture === 'unknown');
}

/** One platform image and the statements about it. */
export interface AttestedImage {
  /** The image manifest (the statements' subject). */
  descriptor: Descriptor;
  platform: Platform;
  statements: Statement[];
}

/** Store one image's statements and their manifest; the index entry that points at it. */
export async function writeAttestationManifest(blobs: BlobStore, img: AttestedImage): Promise<Descriptor> {
  const layers: Descriptor[] = [];
  for (const st of img.statements) {
    const d = await blobs.putBytes(Buffer.from(JSON.stringify(st, null, 2)), INTOTO_MEDIA_TYPE);
    layers.push({ mediaType: INTOTO_MEDIA_TYPE, digest: d.digest, size: d.size, annotations: { [PREDICATE_TYPE_ANNOTATION]: st.predicateType } });
  }
  // the config is only there for registries that want one: an image config of unknown/unknown
  // whose diff_ids are the (uncompressed) statements, as BuildKit writes it
  const config = { architecture: 'unknown', os: 'unknown', config: {}, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) } };
  const c = await blobs.putBytes(canonicalJson(config), MediaType.OciConfig);
  const manifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: MediaType.OciConfig, digest: c.digest, size: c.size }, layers };
  const m = await blobs.putBytes(canonicalJson(manifest), MediaType.OciManifest);
  return {
    mediaType: MediaType.OciManifest,
    digest: m.digest,
    size: m.size,
    annotations: { [REFERENCE_DIGEST_ANNOTATION]: img.descriptor.digest, [REFERENCE_TYPE_ANNOTATION]: ATTESTATION_MANIFEST },
    platform: UNKNOWN_PLATFORM,
  };
}

/**
 * The image index of images with their attestations (images first, then one attestation
 * manifest per image, as BuildKit orders them), stored; its descriptor.
 */
export async function writeAttestedIndex(blobs: BlobStore, images: readonly AttestedImage[], annotations?: Record<string, string>): Promise<Descriptor> {
  const manifests: Descriptor[] = images.map((i) => ({ mediaType: i.descriptor.mediaType, digest: i.descriptor.digest, size: i.descriptor.size, ...(i.descriptor.annotations ? { annotations: i.descriptor.annotations } : {}), platform: i.platform }));
  for (const img of images) manifests.push(await writeAttestationManifest(blobs, img));
  const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests, ...(annotations ? { annotations } : {}) };
  const d = await blobs.putBytes(canonicalJson(index), MediaType.OciIndex);
  return { mediaType: MediaType.OciIndex, digest: d.digest, size: d.size };
}
