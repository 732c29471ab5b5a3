import type { Descriptor, Digest } from '@hoist/oci';
import type { CopyInstruction } from '@hoist/parser';
import { cacheKey } from './cache.js';
import { inputDigests } from './cache-inputs.js';
import type { BuildSession } from './session.js';
import type { StageState } from './state.js';
import { copyInto } from './copy.js';
import { unpackArchive, type ArchiveKind } from './archive.js';
import { withMountedImage } from './materialize.js';
import { resolveChown } from './rootfs.js';
import { commitOptions } from './commit-options.js';
import { copyPathViews, copyStepError } from './host-paths.js';
import type { SourceItem } from './sources.js';
import type { OwnedRoot } from './owner.js';

type Layer = { descriptor: Descriptor; diffId: Digest };

/**
 * `COPY --link`: the files are copied into an empty root and the result is a layer of its own,
 * as BuildKit does — nothing of the previous state is read (a symlink on the destination path
 * is not followed: the layer's directories replace it), and the layer depends only on the
 * copy's inputs, so it is reused when the stage below changes (`link` records in the cache).
 */
export async function executeLinkedCopy(
  ctx: BuildSession,
  ins: CopyInstruction,
  state: StageState,
  inputs: Record<string, unknown>,
  src: { items: SourceItem[]; archives: Array<SourceItem & { kind: ArchiveKind }>; dest: string; roots: string[]; source?: OwnedRoot | undefined },
): Promise<Layer> {
  const key = cacheKey('link', inputs);
  const hit = ctx.cacheDisabled(undefined) ? undefined : await ctx.cache.get(key);
  if (hit?.layer && (await ctx.opts.store.blobs.has(hit.layer.descriptor.digest))) return hit.layer;
  // user and group names still come from the image the files land in
  const owner = ins.chown
    ? /^\d+(:\d+)?$/.test(ins.chown)
      ? await resolveChown('/nonexistent', ins.chown)
      : await withMountedImage(ctx, state.img, (m) => resolveChown(m.root, ins.chown!))
    : undefined;
  const layer = await ctx.limit(async () => {
    const m = await ctx.opts.snapshotter.mount([]);
    try {
      const plain = src.items.filter((i) => !src.archives.some((a) => a === i));
      const createdTime = ctx.opts.sourceDateEpoch ?? Math.floor(Date.now() / 1000);
      if (plain.length > 0) {
        await copyInto(m.root, plain, {
          dest: src.dest,
          ...(owner ? { owner } : {}),
          preserveOwner: ins.fromStage !== undefined || ins.from !== undefined,
          owners: m.owners,
          source: src.source,
          createdTime,
          ...(ins.chmod ? { chmod: ins.chmod } : {}),
        });
      }
      for (const a of src.archives) await unpackArchive({ root: m.root, archive: a.entries[0]!.abs, kind: a.kind, dest: src.dest, createdTime, owners: m.owners, ...(owner ? { owner } : {}) });
      const r = await m.commit(commitOptions(ctx));
      return { descriptor: r.descriptor, diffId: r.diffId };
    } catch (e) {
      throw copyStepError(e, copyPathViews(ctx.opts.root, [m.root, ...src.roots]));
    } finally {
      await m.release();
    }
  });
  await ctx.cache.put({ key, created: new Date().toISOString(), inputDigests: inputDigests('link', { ...inputs, op: 'link' }), layer });
  return layer;
}
