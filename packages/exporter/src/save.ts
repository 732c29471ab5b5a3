import type { Writable } from 'node:stream';
import { openFileTarget, withTarget } from './dest.js';
import { writeDockerArchive } from './docker-archive.js';
import { checkBlobsPresent, type ExportImage } from './images.js';
import { writeOciArchive, writeOciDir } from './oci-layout.js';
import { TarSink } from './tar-sink.js';

export type ArchiveFormat = 'docker' | 'oci';

export interface SaveOptions {
  format: ArchiveFormat;
  /** A file path, or `-` for `stdout`. */
  dest: string;
  /** Where `-` goes (default process.stdout). */
  stdout?: Writable & { isTTY?: boolean };
  /** mtime of the archive members (seconds), default 0. */
  mtime?: number;
  signal?: AbortSignal;
}

/** Write images (their layers wherever they are) as a docker-archive or an OCI layout tar into a stream. */
export async function writeArchive(images: readonly ExportImage[], out: Writable, opts: Omit<SaveOptions, 'dest' | 'stdout'>): Promise<void> {
  await checkBlobsPresent(images);
  const sink = new TarSink(out, { ...(opts.mtime !== undefined ? { mtime: opts.mtime } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
  const o = opts.signal ? { signal: opts.signal } : {};
  if (opts.format === 'docker') await writeDockerArchive(images, sink, o);
  else await writeOciArchive(images, sink, o);
}

/**
 * Save images to an archive file (atomically: temp file, fsync, rename) or to stdout.
 * Returns where it went.
 */
export async function saveImages(images: readonly ExportImage[], opts: SaveOptions): Promise<string> {
  await checkBlobsPresent(images);
  const target = await openFileTarget(opts.dest, opts.stdout ?? process.stdout);
  return withTarget(target, async (t) => {
    await writeArchive(images, t.stream, opts);
    return t.dest;
  });
}

/** Save images as an OCI layout directory (new, empty, or an existing layout to add to). */
export async function saveOciDir(images: readonly ExportImage[], dest: string, opts: { signal?: AbortSignal } = {}): Promise<string> {
  await checkBlobsPresent(images);
  return writeOciDir(images, dest, opts);
}
