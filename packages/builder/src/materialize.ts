import type { Descriptor, Digest, Image } from '@hoist/oci';
import { BuildError } from './errors.js';
import type { Mounted } from '@hoist/snapshotter';
import type { BuildSession } from './session.js';

/**
 * Make an image's layers usable as snapshots: fetch blobs that are not local yet (lazily, only
 * when a step really runs on them), then unpack each once (keyed by diff_id).
 */
export async function materialize(ctx: BuildSession, img: Image): Promise<void> {
  const blobs = ctx.opts.store.blobs;
  const missing = [];
  for (const l of img.layers) if (!(await blobs.has(l.digest))) missing.push(l);
  await fetchMissing(ctx, missing);
  const diffIds = img.config.rootfs.diff_ids;
  for (let i = 0; i < img.layers.length; i++) {
    await ctx.opts.snapshotter.ensureLayer({ diffId: diffIds[i]!, descriptor: img.layers[i]! });
  }
}

/**
 * The lower layers to mount for a chain: a layer that appears twice (typically the empty layer
 * of two RUN/WORKDIR steps that changed nothing) is kept only at its topmost position, which
 * shows the same tree — overlayfs refuses the same lower directory twice (ELOOP).
 */
export function mountLowers(diffIds: readonly Digest[]): Digest[] {
  const seen = new Set<string>();
  const out: Digest[] = [];
  for (let i = diffIds.length - 1; i >= 0; i--) {
    if (seen.has(diffIds[i]!)) continue;
    seen.add(diffIds[i]!);
    out.unshift(diffIds[i]!);
  }
  return out;
}

/** Mount a writable root over an image's layers, run `fn`, and always release the mount. */
export async function withMountedImage<T>(ctx: BuildSession, img: Image, fn: (m: Mounted) => Promise<T>): Promise<T> {
  await materialize(ctx, img);
  const m = await ctx.opts.snapshotter.mount(mountLowers(img.config.rootfs.diff_ids), ctx.opts.signal ? { signal: ctx.opts.signal } : {});
  try {
    return await fn(m);
  } finally {
    await m.release();
  }
}

/** Bring missing layer blobs into the store: from the base image they belong to, else an imported cache. */
export async function fetchMissing(ctx: BuildSession, missing: Descriptor[]): Promise<void> {
  let rest = missing;
  for (const base of ctx.bases.values()) {
    const mine = rest.filter((m) => base.manifest.value.layers.some((l) => l.digest === m.digest));
    if (mine.length > 0) {
      await ctx.opts.images.fetchLayers(base, mine, ctx.opts.signal ? { signal: ctx.opts.signal } : {});
      rest = rest.filter((m) => !mine.includes(m));
    }
  }
  for (const d of rest) {
    if (await ctx.opts.store.blobs.has(d.digest)) continue;
    if (!(await ctx.fetchRemoteLayer(d))) throw new BuildError('BASE_IMAGE_NOT_FOUND', `layer ${d.digest} is neither in the store nor in an imported cache`);
  }
}
