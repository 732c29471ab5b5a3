import type { Descriptor, Digest } from '@hoist/oci';
import type { CopyInstruction } from '@hoist/parser';
import type { BuildSession } from './session.js';
import type { PreparedCopy, StageState } from './state.js';
import { withMountedImage } from './materialize.js';
import { absDest } from './copy-sources.js';
import { copyInto } from './copy.js';
import { resolveChown } from './rootfs.js';
import { commitOptions } from './commit-options.js';
import { unpackArchive } from './archive.js';
import { executeLinkedCopy } from './link-copy.js';
import { copyPathViews, copyStepError } from './host-paths.js';

export { absDest, prepareCopy } from './copy-sources.js';

export async function executeCopy(
  ctx: BuildSession,
  ins: CopyInstruction,
  state: StageState,
  prepared: PreparedCopy,
): Promise<{ descriptor: Descriptor; diffId: Digest }> {
  const { items, archives, roots, source } = await prepared.load();
  const dest = absDest(ins.dest, state.img.config.config?.WorkingDir);
  if (ins.link) return executeLinkedCopy(ctx, ins, state, prepared.inputs, { items, archives, dest, roots, source });
  return ctx.limit(() =>
    withMountedImage(ctx, state.img, async (m) => {
      try {
        const owner = ins.chown ? await resolveChown(m.root, ins.chown) : undefined;
        const createdTime = ctx.opts.sourceDateEpoch ?? Math.floor(Date.now() / 1000);
        const plain = items.filter((i) => !archives.some((a) => a === i));
        if (plain.length > 0) {
          await copyInto(m.root, plain, {
            dest,
            ...(owner ? { owner } : {}),
            // files from another stage or image keep their owners unless --chown is given
            preserveOwner: ins.fromStage !== undefined || ins.from !== undefined,
            owners: m.owners,
            source,
            createdTime,
            ...(ins.chmod ? { chmod: ins.chmod } : {}),
          });
        }
        for (const a of archives) await unpackArchive({ root: m.root, archive: a.entries[0]!.abs, kind: a.kind, dest, createdTime, owners: m.owners, ...(owner ? { owner } : {}) });
        const r = await m.commit(commitOptions(ctx));
        return { descriptor: r.descriptor, diffId: r.diffId };
      } catch (e) {
        throw copyStepError(e, copyPathViews(ctx.opts.root, [m.root, ...roots]));
      }
    }),
  );
}
