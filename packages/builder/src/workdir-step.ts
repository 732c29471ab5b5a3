import type { Descriptor, Digest } from '@hoist/oci';
import { promises as fsp } from 'node:fs';
import type { BuildSession } from './session.js';
import type { StageState } from './state.js';
import { withMountedImage } from './materialize.js';
import { resolveUser, secureJoin } from './rootfs.js';
import { commitOptions } from './commit-options.js';
import { setOwner } from './owner.js';

/** WORKDIR creates its directory (owned by the current USER, as BuildKit does) when missing. */
export async function executeWorkdir(ctx: BuildSession, dir: string, state: StageState): Promise<{ descriptor: Descriptor; diffId: Digest }> {
  return ctx.limit(() =>
    withMountedImage(ctx, state.img, async (m) => {
      const abs = await secureJoin(m.root, dir);
      const exists = await fsp.stat(abs).then((s) => s.isDirectory(), () => false);
      if (!exists) {
        const user = await resolveUser(m.root, state.img.config.config?.User ?? '');
        const made = await fsp.mkdir(abs, { recursive: true, mode: 0o755 });
        if (made) {
          const t = ctx.opts.sourceDateEpoch;
          // chown every directory mkdir created
          let cur = abs;
          while (cur.length >= made.length) {
            await setOwner(cur, user.uid, user.gid, m);
            if (t !== undefined) await fsp.utimes(cur, t, t);
            cur = cur.slice(0, cur.lastIndexOf('/'));
          }
        }
      }
      const r = await m.commit(commitOptions(ctx));
      return { descriptor: r.descriptor, diffId: r.diffId };
    }),
  );
}
