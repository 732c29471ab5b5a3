import * as fs from 'node:fs';
import { promises as fsp, type BigIntStats } from 'node:fs';
import { unprivilegedIds } from '@hoist/oci';
import { SnapshotError, throwIfAborted } from '../errors.js';
import { END_OF_ARCHIVE, encodeHeader, paddingFor, type EntryType, type TarHeader } from './format.js';

/** What a diff walk produces, in layer order (parents first, siblings sorted by member name). */
export type LayerEntry =
  /** `name` was deleted: written as `<dir>/.wh.<base>`. */
  | { kind: 'whiteout'; name: string }
  /** Lower content of directory `dir` is hidden: written as `<dir>/.wh..wh..opq`. */
  | { kind: 'opaque'; dir: string }
  /** A file system object to write with its metadata (and content for regular files). */
  | { kind: 'node'; name: string; abs: string; st: BigIntStats; xattrs?: Map<string, Buffer> };

export interface TarWriteOptions {
  /** Clamp every mtime later than this (seconds) to it: reproducible layers (`SOURCE_DATE_EPOCH`). */
  sourceDateEpoch?: number;
  /**
   * Files owned by these ids are written as 0:0. Default: this process's ids when it cannot
   * chown (no-privilege mode, see unprivilegedIds): every file it wrote is its own on disk and
   * root's in the layer, as proot -0 showed them to RUN.
   */
  selfAsRoot?: { uid: number; gid: number };
  /** Every member is written as owned by these ids (a build context: BuildKit sends its files as 0:0). */
  owner?: { uid: number; gid: number };
  /**
   * No-privilege mode: the owners of the tree by member name (see Ownership). A member owned
   * on disk by the selfAsRoot ids gets the recorded owner (0:0 when none is recorded).
   */
  owners?: { get(name: string): { uid: number; gid: number } };
  signal?: AbortSignal;
}

const BATCH = 64 * 1024;
const READ_CHUNK = 256 * 1024;
/** Fixed header of whiteout and opaque markers: nothing machine- or time-dependent. */
const MARKER = { type: 'file' as const, mode: 0, uid: 0, gid: 0, size: 0, mtime: 0 };

function typeOf(st: BigIntStats): EntryType | undefined {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return undefined; // sockets are not part of layers
}

export function devMajor(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
}
export function devMinor(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
}

export function joinName(dir: string, base: string): string {
  return dir === '' ? base : `${dir}/${base}`;
}

/**
 * Turn layer entries into tar bytes: normalised headers (uid/gid numeric, no names, whole-second
 * mtimes clamped to SOURCE_DATE_EPOCH, no atime/ctime), hard links as tar hard links to the
 * first member with the same inode, xattrs as `SCHILY.xattr.*`. Small pieces are batched.
 */
export async function* tarBytes(entries: AsyncIterable<LayerEntry>, opts: TarWriteOptions = {}): AsyncGenerator<Buffer> {
  const sde = opts.sourceDateEpoch;
  const self = opts.selfAsRoot ?? unprivilegedIds();
  const owner = opts.owner;
  const owners = opts.owners;
  const uidOf = (st: BigIntStats, name: string): number => owner?.uid ?? (self && Number(st.uid) === self.uid ? (owners?.get(name).uid ?? 0) : Number(st.uid));
  const gidOf = (st: BigIntStats, name: string): number => owner?.gid ?? (self && Number(st.gid) === self.gid ? (owners?.get(name).gid ?? 0) : Number(st.gid));
  const links = new Map<string, string>();
  let acc: Buffer[] = [];
  let accLen = 0;
  const add = (b: Buffer): void => {
    acc.push(b);
    accLen += b.length;
  };
  const take = (): Buffer => {
    const out = acc.length === 1 ? acc[0]! : Buffer.concat(acc, accLen);
    acc = [];
    accLen = 0;
    return out;
  };
  for await (const e of entries) {
    throwIfAborted(opts.signal);
    if (e.kind === 'whiteout') {
      const i = e.name.lastIndexOf('/');
      add(encodeHeader({ ...MARKER, name: i < 0 ? `.wh.${e.name}` : `${e.name.slice(0, i)}/.wh.${e.name.slice(i + 1)}` }));
    } else if (e.kind === 'opaque') {
      add(encodeHeader({ ...MARKER, name: joinName(e.dir, '.wh..wh..opq') }));
    } else {
      const st = e.st;
      const type = typeOf(st);
      if (!type) continue;
      let mtime = Number(st.mtimeNs / 1_000_000_000n);
      if (sde !== undefined && mtime > sde) mtime = sde;
      const h: TarHeader = { name: e.name, type, mode: Number(st.mode & 0o7777n), uid: uidOf(st, e.name), gid: gidOf(st, e.name), size: 0, mtime };
      if (e.xattrs && e.xattrs.size > 0) h.xattrs = e.xattrs;
      if (type !== 'dir' && st.nlink > 1n) {
        const key = `${st.dev}:${st.ino}`;
        const first = links.get(key);
        if (first !== undefined) {
          add(encodeHeader({ ...h, type: 'link', linkname: first }));
          if (accLen >= BATCH) yield take();
          continue;
        }
        links.set(key, e.name);
      }
      if (type === 'symlink') h.linkname = await fsp.readlink(e.abs);
      if (type === 'char' || type === 'block') {
        h.devmajor = devMajor(st.rdev);
        h.devminor = devMinor(st.rdev);
      }
      if (type === 'file') {
        const size = Number(st.size);
        h.size = size;
        add(encodeHeader(h));
        yield* fileBody(e.abs, size, add, take, () => accLen);
        const pad = paddingFor(size);
        if (pad) add(Buffer.alloc(pad));
      } else {
        add(encodeHeader(h));
      }
    }
    if (accLen >= BATCH) yield take();
  }
  add(END_OF_ARCHIVE);
  yield take();
}

/**
 * File content is read with synchronous reads on the main thread: the libuv thread pool is busy
 * compressing, and an async read queued behind compression jobs starves the pipeline (measured:
 * reads became the bottleneck at ~100 MiB/s). A read from the page cache is a memcpy.
 */
async function* fileBody(abs: string, size: number, add: (b: Buffer) => void, take: () => Buffer, accLen: () => number): AsyncGenerator<Buffer> {
  if (size === 0) return;
  const fd = fs.openSync(abs, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    let done = 0;
    while (done < size) {
      const want = Math.min(READ_CHUNK, size - done);
      const buf = Buffer.allocUnsafe(want);
      let got = 0;
      while (got < want) {
        const n = fs.readSync(fd, buf, got, want - got, done + got);
        if (n === 0) throw new SnapshotError('TREE_CHANGED', `${abs} shrank while it was written into a layer`);
        got += n;
      }
      done += want;
      if (want < BATCH) add(buf);
      else {
        if (accLen() > 0) yield take();
        yield buf;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}
