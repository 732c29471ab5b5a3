import type { Descriptor, Digest, Image, Layer } from '@hoist/oci';
import { BuildError } from './errors.js';
import type { Mounted } from '@hoist/snapshotter';
import type { BuildSession } from './session.js';

/**
 * Make an image's layers usable as snapshots, all layers at once: each one that is not unpacked
 * yet is brought into the store from wherever it is (a base image's registry, an imported cache;
 * only when a step really runs on them) and unpacked once (keyed by diff_id). A registry
 * download is unpacked as it comes in (the snapshotter's LayerChecker), not read again after.
 */
export async function materialize(ctx: BuildSession, img: Image): Promise<void> {
  const diffIds = img.config.rootfs.diff_ids;
  const signal = ctx.opts.signal ? { signal: ctx.opts.signal } : {};
  const snapshotter = ctx.opts.snapshotter;
  const ensured = img.layers.map(async (d, i) => {
    const diffId = diffIds[i]!;
    // a snapshot needs no blob (a layer this build just committed may still be being stored)
    if (await snapshotter.has(diffId)) return;
    const layer = await ctx.layers.find(d, diffId);
    if (!layer) throw missingLayer(d);
    await snapshotter.ensureLayer({ diffId, descriptor: d, fetch: () => fetchLayer(ctx, layer), ...signal });
  });
  const results = await Promise.allSettled(ensured);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
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

function missingLayer(d: Descriptor): BuildError {
  return new BuildError('BASE_IMAGE_NOT_FOUND', `layer ${d.digest} is neither in the store nor in an imported cache`);
}

/** The layers of an image, wherever each blob is (the store, a base image's registry, an imported cache). */
export async function imageLayers(ctx: BuildSession, img: Image): Promise<Layer[]> {
  const diffIds = img.config.rootfs.diff_ids;
  // looked for at once; a missing one is reported in layer order
  const found = await Promise.all(img.layers.map((d, i) => ctx.layers.find(d, diffIds[i]!)));
  return found.map((layer, i) => {
    if (!layer) throw missingLayer(img.layers[i]!);
    return layer;
  });
}

/** Bring an image's layer blobs into the store (one at a time, in order); those there stay as they are. */
export async function fetchLayers(ctx: BuildSession, img: Image): Promise<void> {
  for (const layer of await imageLayers(ctx, img)) await fetchLayer(ctx, layer);
}

async function fetchLayer(ctx: BuildSession, layer: Layer): Promise<void> {
  const r = await layer.fetchInto(ctx.opts.store.blobs, ctx.opts.signal ? { signal: ctx.opts.signal } : {});
  if (r === 'fetched' && layer.origin.kind === 'cache') ctx.stats.layerFetched();
}
