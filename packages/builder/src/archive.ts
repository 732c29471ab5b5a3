import { spawn } from 'node:child_process';
import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { applyLayer, type Ownership } from '@hoist/snapshotter';
import { BuildError } from './errors.js';
import { mkdirs } from './copy.js';
import { memberName } from './owner.js';

export type ArchiveKind = 'gzip' | 'bzip2' | 'xz' | 'zstd' | 'tar';

/** Whether ADD would unpack this file: a tar archive, plain or compressed, told by its content. */
export async function archiveKind(file: string): Promise<ArchiveKind | undefined> {
  const fh = await fsp.open(file, 'r');
  try {
    const buf = Buffer.alloc(512);
    const { bytesRead } = await fh.read(buf, 0, 512, 0);
    if (bytesRead >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) return 'gzip';
    if (bytesRead >= 3 && buf.subarray(0, 3).toString() === 'BZh') return 'bzip2';
    if (bytesRead >= 6 && buf[0] === 0xfd && buf.subarray(1, 6).toString() === '7zXZ\0') return 'xz';
    if (bytesRead >= 4 && buf.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
    return bytesRead >= 262 && buf.subarray(257, 262).toString() === 'ustar' ? 'tar' : undefined;
  } finally {
    await fh.close();
  }
}

/** A decompressed stream of `file` (bzip2 and xz through their Debian tools). */
function tarStream(file: string, kind: ArchiveKind): { stream: Readable; done: Promise<void> } {
  if (kind === 'gzip' || kind === 'zstd' || kind === 'tar') return { stream: createReadStream(file), done: Promise.resolve() };
  const tool = kind === 'bzip2' ? 'bzip2' : 'xz';
  const p = spawn(tool, ['-dc', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<void>((resolve, reject) => {
    p.on('error', (e) => reject(new BuildError('STEP_FAILED', `ADD: cannot run ${tool} to unpack ${path.basename(file)}: ${e.message}`)));
    p.on('close', (code) => (code === 0 ? resolve() : reject(new BuildError('STEP_FAILED', `ADD: ${tool} could not unpack ${path.basename(file)}: ${err.trim()}`))));
  });
  return { stream: p.stdout, done };
}

export interface UnpackOptions {
  /** The mounted root the step writes. */
  root: string;
  /** The archive on the host (a context file or a download). */
  archive: string;
  kind: ArchiveKind;
  /** Destination directory inside the image (WORKDIR applied). */
  dest: string;
  /** `ADD --chown`: owner of the directories the step creates and of every member. */
  owner?: { uid: number; gid: number };
  /** No privileges: the mount's ownership record (the members' owners go there). */
  owners?: Ownership | undefined;
  /** mtime (seconds) of the destination directories the step creates. */
  createdTime: number;
}

/**
 * ADD's archive extraction, as Docker's chrootarchive.Untar: the destination is created (owned
 * by `--chown`'s user) with symlinks on its path resolved inside the root, then every member is
 * confined to it: `..` cannot lead out, and an absolute symlink (`/var/run -> /run` of a Debian
 * image, unpacking to `/`) is resolved from the destination, as in the chroot. Owners (or the
 * `--chown` owner), modes and mtimes come from the archive; existing directories take the
 * archive's metadata; other files are replaced.
 */
export async function unpackArchive(o: UnpackOptions): Promise<void> {
  const target = await mkdirs(o.root, o.dest, { owner: o.owner ?? { uid: 0, gid: 0 }, mtime: o.createdTime, owners: o.owners });
  const { stream, done } = tarStream(o.archive, o.kind);
  const owners = o.owners?.at(memberName(o.root, target));
  try {
    await Promise.all([applyLayer(stream, target, { whiteouts: 'flat', absoluteSymlinks: 'reroot', ...(o.owner ? { owner: o.owner } : {}), ...(owners ? { owners } : {}) }), done]);
  } catch (e) {
    stream.destroy();
    if (e instanceof BuildError) throw e;
    throw new BuildError('STEP_FAILED', `ADD could not unpack ${path.basename(o.archive)}: ${(e as Error).message}`, { cause: e });
  }
}
