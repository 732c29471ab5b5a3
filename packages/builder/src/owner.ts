import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { unprivilegedIds } from '@hoist/oci';
import type { Owner, Ownership } from '@hoist/snapshotter';

/**
 * Where a step's chowns go: a mounted root, and its ownership record in the no-privilege mode
 * (a Mounted of the copy driver run without privileges has one: see Ownership).
 */
export interface OwnedRoot {
  root: string;
  owners?: Ownership | undefined;
}

/** `abs` (below `root`) as a tar member name: relative, `/`-separated, '' for the root. */
export function memberName(root: string, abs: string): string {
  return path.relative(root, abs).split(path.sep).join('/');
}

/**
 * Give `p` (not following a symlink) to uid:gid. Without privileges (a locked-down pod), files
 * cannot be given away: the owner is written into the mount's ownership record, from which the
 * layer's tar headers are written; with no record, the file stays the user's own (0:0 in layers).
 */
export async function setOwner(p: string, uid: number, gid: number, where?: OwnedRoot): Promise<void> {
  if (where?.owners) {
    where.owners.set(memberName(where.root, p), { uid, gid });
    return;
  }
  if (unprivilegedIds()) return;
  await fsp.lchown(p, uid, gid);
}

/** The owner of `abs` below a source root: on disk, or from its record without privileges. */
export function ownerIn(where: OwnedRoot | undefined, abs: string, st: { uid: number; gid: number }): Owner {
  if (where?.owners) return where.owners.get(memberName(where.root, abs));
  return { uid: st.uid, gid: st.gid };
}
