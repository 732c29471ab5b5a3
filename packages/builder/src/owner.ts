import { promises as fsp } from 'node:fs';
import { unprivilegedIds } from '@hoist/oci';

/**
 * Give `p` (not following a symlink) to uid:gid — unless this process cannot chown (the
 * no-privilege mode of a locked-down pod): there every file stays the user's own and layers
 * record it as 0:0 (see unprivilegedIds and the snapshotter's tar writer).
 */
export async function setOwner(p: string, uid: number, gid: number): Promise<void> {
  if (unprivilegedIds()) return;
  await fsp.lchown(p, uid, gid);
}
