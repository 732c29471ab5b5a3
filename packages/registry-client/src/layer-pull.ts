import { OciError, type BlobStore, type Descriptor, type Digest, type LayerPair, type Manifest } from '@hoist/oci';
import { fetchBlobInto, type BlobTap, type ContentCheck } from './blob-pull.js';
import type { ClientContext, RepoRef } from './context.js';
import { RegistryError } from './errors.js';

/**
 * How a pull verifies layers against the diff_ids of the image config (this package reads no
 * tar: the snapshotter's LayerChecker is the implementation). Failures are reported as
 * `IMAGE_INVALID`, and the manifest is not stored.
 */
export interface LayerChecks {
  /** Whether the blob is known to have this diff_id already; rejects when known to have another. */
  known(layer: Descriptor, diffId: Digest): Promise<boolean>;
  /** A check of the blob's bytes, fed while it downloads. */
  begin(layer: Descriptor, diffId: Digest): ContentCheck;
  /** Check a blob that is in the store already. */
  verify(layer: Descriptor, diffId: Digest, signal?: AbortSignal): Promise<void>;
}

/** How a push verifies the layers of a local image (its config read from the store) before the manifest goes up. */
export interface ManifestChecks {
  verifyManifest(manifest: Manifest, signal?: AbortSignal): Promise<void>;
}

/**
 * Fetch one layer into the store and verify it: in the same pass as the download when this
 * call downloads it, else from the store (the blob was there, or another caller fetched it).
 */
export async function fetchCheckedLayer(ctx: ClientContext, r: RepoRef, o: { pair: LayerPair; total: number; blobs: BlobStore; checks: LayerChecks; signal: AbortSignal }): Promise<void> {
  const { pair, checks } = o;
  const invalid = (e: unknown): RegistryError => {
    const at = pair.positions.map((i) => i + 1).join(', ');
    const why = e instanceof RegistryError && e.code === 'IMAGE_INVALID' ? (e.cause as Error) : (e as Error);
    return new RegistryError('IMAGE_INVALID', `layer ${at} of ${o.total} (${pair.layer.digest}): ${why.message}`, { registry: r.registry, repository: r.repository, cause: why });
  };
  const known = await checks.known(pair.layer, pair.diffId).catch((e: unknown) => {
    throw invalid(e);
  });
  const tap: BlobTap = { open: () => checks.begin(pair.layer, pair.diffId), done: false };
  try {
    await fetchBlobInto(ctx, r, pair.layer, o.blobs, o.signal, known ? undefined : tap);
  } catch (e) {
    throw e instanceof RegistryError && e.code === 'IMAGE_INVALID' ? invalid(e) : e;
  }
  if (known || tap.done) return;
  await checks.verify(pair.layer, pair.diffId, o.signal).catch((e: unknown) => {
    if (o.signal.aborted || (e as { code?: string }).code === 'ABORTED') throw e;
    if (e instanceof OciError) {
      throw new RegistryError('STORE', `cannot read layer ${pair.layer.digest} from the store: ${e.message}`, { registry: r.registry, repository: r.repository, cause: e });
    }
    throw invalid(e);
  });
}
