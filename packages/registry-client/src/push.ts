import { isIndexMediaType, parseIndex, parseManifest, formatReference, OciError, type Descriptor, type ImageStore, type Layer, type Manifest, type Reference } from '@hoist/oci';
import type { ManifestChecks } from './layer-pull.js';
import { allOrAbortLinked } from './tasks.js';
import type { BlobPushResult } from './blob-push.js';
import type { ClientContext } from './context.js';
import { RegistryError } from './errors.js';

export interface PushOptions {
  signal?: AbortSignal;
  /** Repositories on the same registry to try mounting blobs from (besides those the client knows). */
  mountFrom?: string[];
  /** Verify each manifest's layers against its config (alongside the uploads) before the manifest is pushed. */
  checks?: ManifestChecks;
  /**
   * The image's layers, wherever they are: a blob the store lacks is read from its layer (a base
   * image's registry, an imported cache) and, on the same registry, mounted from its repository.
   */
  layers?: readonly Layer[];
}

export interface PushResult {
  /** What `ref` now points at. */
  descriptor: Descriptor;
  /** `registry/repository@digest` of the pushed manifest or index. */
  reference: string;
  /** How each blob got there. */
  blobs: Record<string, BlobPushResult>;
}

export interface PushDeps {
  ctx: ClientContext;
  store: ImageStore;
  desc: Descriptor;
  ref: Reference;
  opts: PushOptions;
  pushBlob: (d: Descriptor, signal: AbortSignal) => Promise<BlobPushResult>;
  putManifest: (r: Reference, raw: Buffer, mediaType: string, signal?: AbortSignal) => Promise<Descriptor>;
  headManifest: (r: Reference, signal?: AbortSignal) => Promise<Descriptor | undefined>;
  learnSources: () => Promise<void>;
}

/** The local image's layers checked: a broken or unsafe image is never made available in the registry. */
async function verifyLocal(checks: ManifestChecks, m: Descriptor, man: Manifest, signal: AbortSignal, where: { registry: string; repository: string }): Promise<void> {
  try {
    await checks.verifyManifest(man, signal);
  } catch (e) {
    if (signal.aborted) throw e;
    throw new RegistryError('IMAGE_INVALID', `local image ${m.digest}: ${(e as Error).message}`, {
      ...where,
      cause: e,
      hint: 'Nothing was pushed as usable. Run `hoist fsck`, remove the image (`hoist rm`), then pull or rebuild it',
    });
  }
}

/**
 * A manifest of filesystem layers, which the checks can unpack; not an artifact such as an
 * attestation manifest (in-toto statements as layers), whose blobs are verified by digest only.
 */
function hasTarLayers(man: Manifest): boolean {
  return man.layers.every((l) => /\.tar(?:$|[+.])/.test(l.mediaType) || l.mediaType.includes('rootfs.diff.tar'));
}

/** Push a manifest (its config and layers first) or an index (each manifest first). */
export async function pushImage(d: PushDeps): Promise<PushResult> {
  const { store, desc, ref, opts } = d;
  const where = { registry: ref.registry, repository: ref.repository };
  const load = async (x: Descriptor): Promise<Buffer> => {
    try {
      return await store.blobs.getBytes(x);
    } catch (e) {
      throw new RegistryError('BLOB_UNKNOWN', `${x.digest} is not readable in the local store: ${(e as Error).message}`, { ...where, cause: e, hint: 'Run `hoist fsck` or rebuild the image' });
    }
  };
  await d.learnSources();
  const results: Record<string, BlobPushResult> = {};

  const pushManifest = async (m: Descriptor, raw: Buffer, target: Reference, signal: AbortSignal | undefined): Promise<Descriptor> => {
    let man;
    try {
      man = parseManifest(raw).value;
    } catch (e) {
      throw new RegistryError('MANIFEST_INVALID', `local manifest ${m.digest}: ${(e as OciError).message}`, { ...where, cause: e });
    }
    const blobs = [man.config, ...man.layers].filter((b, i, all) => all.findIndex((x) => x.digest === b.digest) === i);
    // Foreign (non-distributable) layers stay where their URLs point, as Docker leaves them.
    const own = blobs.filter((b) => !(b.urls?.length && b.mediaType.includes('foreign')));
    const uploads = own.map((b) => async (s: AbortSignal): Promise<void> => {
      results[b.digest] = await d.pushBlob(b, s);
    });
    const checks = opts.checks && hasTarLayers(man) ? opts.checks : undefined;
    await allOrAbortLinked(signal, checks ? [...uploads, (s: AbortSignal) => verifyLocal(checks, m, man, s, where)] : uploads);
    return d.putManifest(target, raw, m.mediaType, signal);
  };

  const signal = opts.signal;
  {
    const raw = await load(desc);
    if (ref.digest && ref.digest !== desc.digest) {
      throw new RegistryError('DIGEST_MISMATCH', `cannot push ${desc.digest} as ${formatReference(ref)}`, { ...where, hint: 'Push by tag, or name the digest of the image you push' });
    }
    const top: Reference = ref.tag ? { ...where, tag: ref.tag } : { ...where, digest: desc.digest };
    let pushed: Descriptor;
    if (isIndexMediaType(desc.mediaType)) {
      let idx;
      try {
        idx = parseIndex(raw).value;
      } catch (e) {
        throw new RegistryError('MANIFEST_INVALID', `local index ${desc.digest}: ${(e as OciError).message}`, { ...where, cause: e });
      }
      await allOrAbortLinked(signal, idx.manifests.map((m) => async (s: AbortSignal) => {
        const child: Reference = { ...where, digest: m.digest };
        if (await store.blobs.has(m.digest)) {
          const childRaw = await load(m);
          if (isIndexMediaType(m.mediaType)) throw new RegistryError('UNSUPPORTED', `nested index ${m.digest} cannot be pushed`, where);
          await pushManifest(m, childRaw, child, s);
        } else if (!(await d.headManifest(child, s))) {
          throw new RegistryError('MANIFEST_UNKNOWN', `the index lists manifest ${m.digest}${m.platform ? ` (${m.platform.os}/${m.platform.architecture})` : ''}, which is neither in the local store nor in ${ref.repository}`, {
            ...where,
            hint: 'Pull all platforms of the image first, or push only the platform you have',
          });
        }
      }));
      pushed = await d.putManifest(top, raw, desc.mediaType, signal);
    } else {
      pushed = await pushManifest(desc, raw, top, signal);
    }
    return { descriptor: pushed, reference: formatReference({ ...where, digest: pushed.digest }), blobs: results };
  }
}
