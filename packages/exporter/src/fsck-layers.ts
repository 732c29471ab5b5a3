import { pairLayers, type BlobStore, type Descriptor, type Digest, type LayerPair } from '@hoist/oci';
import { checkLayer, SnapshotError } from '@hoist/snapshotter';
import { ExportError, throwIfAborted } from './errors.js';

/** Why a blob is not intact (missing, wrong size, wrong digest), or undefined: a full read. */
export async function verifyBlob(blobs: BlobStore, d: Pick<Descriptor, 'digest' | 'size'>, signal?: AbortSignal): Promise<string | undefined> {
  const st = await blobs.stat(d.digest);
  if (!st) return 'is missing';
  if (st.size !== d.size) return `is ${st.size} bytes, its descriptor says ${d.size}`;
  try {
    for await (const _ of blobs.get(d)) throwIfAborted(signal);
    return undefined;
  } catch (e) {
    if (e instanceof ExportError) throw e;
    return `is corrupt (${(e as Error).message})`;
  }
}

/** A layer blob read in full: its diff_id, or why it cannot be used. */
export type LayerVerdict = { diffId: Digest } | { problem: string };

/**
 * Read a layer blob as extraction would (decompressed, every member's names checked, nothing
 * written): its diff_id. A blob that fails is read once more for its digest, so that a corrupt
 * blob is reported as corrupt, and an intact one as a layer that cannot be unpacked.
 */
export async function inspectLayer(blobs: BlobStore, d: Descriptor, signal?: AbortSignal): Promise<LayerVerdict> {
  const st = await blobs.stat(d.digest);
  if (!st || st.size !== d.size) return { problem: (await verifyBlob(blobs, d, signal)) ?? 'is unreadable' };
  try {
    return { diffId: (await checkLayer(blobs.get(d), signal ? { signal } : {})).diffId };
  } catch (e) {
    throwIfAborted(signal);
    const integrity = await verifyBlob(blobs, d, signal);
    if (integrity) return { problem: integrity };
    const why = e instanceof SnapshotError ? e.message : `not a valid layer: ${(e as Error).message}`;
    return { problem: `cannot be unpacked safely (${why})` };
  }
}

/** Whether a layer is a filesystem tar (OCI or Docker layer media types), not an artifact such as an in-toto statement. */
export function isTarLayer(mediaType: string): boolean {
  return /\.tar(?:$|[+.])/.test(mediaType) || mediaType.includes('rootfs.diff.tar');
}

/**
 * A layer as fsck checks it: a filesystem tar as extraction reads it ({@link inspectLayer}); any
 * other blob (the in-toto statements of an attestation manifest) only for its digest, and its
 * diff_id is its digest (it is stored uncompressed).
 */
export async function checkManifestLayer(blobs: BlobStore, d: Descriptor, signal?: AbortSignal): Promise<LayerVerdict> {
  if (isTarLayer(d.mediaType)) return inspectLayer(blobs, d, signal);
  const problem = await verifyBlob(blobs, d, signal);
  return problem ? { problem } : { diffId: d.digest };
}

/**
 * What is wrong with a manifest's layers, given each blob's verdict: blobs that fail, and when
 * the config's diff_ids are known, counts that differ or content that hashes to another diff_id.
 */
export function layerProblems(layers: Descriptor[], diffIds: Digest[] | undefined, verdicts: ReadonlyMap<Digest, LayerVerdict>): string[] {
  const out: string[] = [];
  const seen = new Set<Digest>();
  for (const l of layers) {
    const v = verdicts.get(l.digest);
    if (v && 'problem' in v && !seen.has(l.digest)) out.push(`layer ${l.digest} ${v.problem}`);
    seen.add(l.digest);
  }
  if (!diffIds) return out;
  let pairs: LayerPair[];
  try {
    pairs = pairLayers({ layers }, { rootfs: { type: 'layers', diff_ids: diffIds } });
  } catch (e) {
    return [...out, (e as Error).message];
  }
  for (const p of pairs) {
    const v = verdicts.get(p.layer.digest);
    if (!v || !('diffId' in v) || v.diffId === p.diffId) continue;
    const at = `layer ${p.positions.map((i) => i + 1).join(', ')} of ${layers.length}`;
    out.push(`layer ${p.layer.digest} (${at}) does not match the image config: it hashes to ${v.diffId} uncompressed, the config says diff_id ${p.diffId}`);
  }
  return out;
}
