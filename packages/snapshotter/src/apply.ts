import * as fs from 'node:fs';
import type { Readable } from 'node:stream';
import { currentUserNamespace, unprivilegedIds, type Digest } from '@hoist/oci';
import { decompress } from './compress.js';
import { SnapshotError, throwIfAborted } from './errors.js';
import { OPAQUE_WHITEOUT, SafeRoot, normalizeEntryName, splitParent, whiteoutTarget, type AbsoluteSymlinks } from './safe-path.js';
import type { OwnerRecord } from './owners.js';
import { ShellHelper, isOverlayXattr } from './sys.js';
import { ByteSource, DEFAULT_MAX_LAYER_BYTES, readTar, type ReadLimits, type TarEntry } from './tar/reader.js';

export interface ApplyOptions extends ReadLimits {
  /**
   * `overlay`: the target is a snapshot directory used as an overlayfs layer — `.wh.x` becomes
   * an overlay whiteout (char device 0/0) and `.wh..wh..opq` sets `trusted.overlay.opaque=y`
   * (or `opaqueXattr`).
   * `flat` (default): the target is a plain tree — whiteouts delete what lower layers left.
   */
  whiteouts?: 'overlay' | 'flat';
  /** The opaque marker for `whiteouts: 'overlay'` (default `trusted.overlay.opaque`). */
  opaqueXattr?: string;
  /** The layer's diff_id: the uncompressed stream must hash to it (DIFF_ID_MISMATCH otherwise). */
  diffId?: Digest;
  /**
   * `skip` leaves device nodes and FIFOs out (for hosts where mknod is not allowed); `fifos`
   * makes FIFOs but leaves char/block devices out. Default: `create`, or `fifos` inside a user
   * namespace, where the kernel refuses mknod of devices (as containerd and BuildKit rootless).
   */
  devices?: 'create' | 'skip' | 'fifos';
  /** Absolute symlinks met on the way to a member: refused (default) or resolved from `dir` (ADD). */
  absoluteSymlinks?: AbsoluteSymlinks;
  /** Owner of every member instead of the archive's (`ADD --chown`). */
  owner?: { uid: number; gid: number };
  /**
   * Record each member's owner here by path, and forget what whiteouts and replacements remove
   * (the no-privilege mode, where files cannot be given away on disk: see Ownership).
   */
  owners?: OwnerRecord;
  signal?: AbortSignal;
}

export interface ApplyResult {
  diffId: Digest;
  /** Uncompressed size of the layer. */
  size: number;
  entries: number;
}

/**
 * Unpack a layer (gzip, zstd or uncompressed; detected) into `dir`, as root: ownership, modes
 * (setuid/setgid/sticky), mtimes, xattrs, hard links, devices, FIFOs. Every member goes through
 * the safe-path module; hostile layers fail with a SnapshotError before anything is written
 * outside `dir`. Verifies the diff_id when given (after unpacking: a failed verification means
 * `dir` must be discarded — the snapshotter always unpacks into a temp dir).
 */
export async function applyLayer(src: Readable | AsyncIterable<Buffer>, dir: string, opts: ApplyOptions = {}): Promise<ApplyResult> {
  const overlay = opts.whiteouts === 'overlay';
  const noChown = unprivilegedIds() !== undefined; // files stay this user's (no-privilege mode)
  const devices = opts.devices ?? (currentUserNamespace() || noChown ? 'fifos' : 'create');
  const dec = await decompress(src);
  const source = new ByteSource(dec.stream, opts.maxBytes ?? DEFAULT_MAX_LAYER_BYTES);
  // directories this apply created, or found empty: their children cannot pre-exist
  const created = new Set<string>(fs.readdirSync(dir).length === 0 ? [''] : []);
  const safe = new SafeRoot(dir, (real) => created.add(real), opts.absoluteSymlinks);
  const ownerOf = (e: TarEntry): { uid: number; gid: number } => opts.owner ?? e;
  const owners = opts.owners;
  const helper = new ShellHelper();
  const touched = new Set<string>(); // real paths written by this layer, and their ancestors
  const dirTimes: Array<[string, number]> = [];
  let entries = 0;
  let ok = false;

  const touch = (real: string): void => {
    for (let p = real; p !== '' && !touched.has(p); p = splitParent(p).parent) touched.add(p);
  };
  /** Remove whatever is at `real` unless it is a directory and `keepDir`. Returns whether a dir remains. */
  const clear = (real: string, keepDir: boolean): boolean => {
    if (!touched.has(real) && created.has(splitParent(real).parent)) return false; // fresh dir: nothing there
    const abs = safe.abs(real);
    const st = fs.lstatSync(abs, { throwIfNoEntry: false });
    if (!st) return false;
    if (st.isDirectory()) {
      if (keepDir) return true;
      owners?.removeTree(real);
      fs.rmSync(abs, { recursive: true, force: true });
      safe.invalidate(real);
      created.delete(real);
    } else {
      owners?.removeTree(real);
      fs.unlinkSync(abs);
    }
    return false;
  };

  const setXattrs = async (abs: string, e: TarEntry): Promise<void> => {
    for (const [name, value] of e.xattrs) {
      if (isOverlayXattr(name)) continue; // a layer must never steer the overlay (redirects, opaque)
      try {
        await helper.exec(['setfattr', '-h', '-n', name, '-v', `0x${value.toString('hex')}`, '--', abs]);
      } catch (err) {
        if (!/not supported|not permitted/i.test((err as Error).message)) throw err;
      }
    }
  };

  const own = (real: string, abs: string, e: TarEntry, symlink: boolean): void => {
    const o = ownerOf(e);
    owners?.set(real, o);
    if (!noChown) chowning(e, o, () => fs.lchownSync(abs, o.uid, o.gid));
    if (symlink) {
      fs.lutimesSync(abs, e.mtime, e.mtime);
      return;
    }
    fs.chmodSync(abs, e.mode); // after chown, which clears setuid/setgid
    fs.utimesSync(abs, e.mtime, e.mtime);
  };

  /**
   * Files are written with synchronous syscalls, between awaits for the next piece of the
   * stream: a thread-pool hop per open/write/chown/chmod/utimes/close costs several times the
   * syscall itself, and parallel creates in one directory only contend on its lock.
   */
  const writeFile = async (real: string, abs: string, e: TarEntry): Promise<void> => {
    const fd = fs.openSync(abs, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    try {
      for await (const b of e.body()) {
        let off = 0;
        while (off < b.length) off += fs.writeSync(fd, b, off, b.length - off);
      }
      const o = ownerOf(e);
      owners?.set(real, o);
      if (!noChown) chowning(e, o, () => fs.fchownSync(fd, o.uid, o.gid));
      fs.fchmodSync(fd, e.mode);
      fs.futimesSync(fd, e.mtime, e.mtime);
    } finally {
      fs.closeSync(fd);
    }
    if (e.xattrs.size > 0) await setXattrs(abs, e);
  };

  const whiteout = async (parent: string, base: string): Promise<void> => {
    if (base === OPAQUE_WHITEOUT) {
      const realP = safe.resolveDir(parent, overlay);
      if (realP === undefined) return;
      if (overlay) {
        await helper.exec(['setfattr', '-n', opts.opaqueXattr ?? 'trusted.overlay.opaque', '-v', 'y', '--', safe.abs(realP)]);
        touch(realP);
        return;
      }
      for (const name of fs.readdirSync(safe.abs(realP))) {
        const child = realP === '' ? name : `${realP}/${name}`;
        if (touched.has(child)) continue;
        owners?.removeTree(child);
        fs.rmSync(safe.abs(child), { recursive: true, force: true });
        safe.invalidate(child);
      }
      return;
    }
    const name = whiteoutTarget(base);
    if (name === undefined) return; // aufs metadata (.wh..wh.plnk, ...): nothing to apply
    const target = parent === '' ? name : `${parent}/${name}`;
    const real = safe.resolve(target, overlay);
    if (real === undefined) return;
    const abs = safe.abs(real);
    if (fs.lstatSync(abs, { throwIfNoEntry: false })) {
      owners?.removeTree(real);
      fs.rmSync(abs, { recursive: true, force: true });
      safe.invalidate(real);
    }
    if (overlay) {
      await helper.exec(['mknod', '-m', '0', '--', abs, 'c', '0', '0']);
      touch(real);
    }
  };

  try {
    for await (const e of readTar(source, opts)) {
      throwIfAborted(opts.signal);
      entries++;
      const rel = normalizeEntryName(e.name);
      const { parent, base } = splitParent(rel);
      if (base.startsWith('.wh.')) {
        await whiteout(parent, base);
        continue;
      }
      if (rel === '') {
        if (e.type !== 'dir') throw new SnapshotError('LAYER_INVALID', `layer member ${JSON.stringify(e.name)} names the root but is not a directory`);
        own('', dir, e, false);
        dirTimes.push([dir, e.mtime]);
        continue;
      }
      const real = safe.resolve(rel, true)!;
      const abs = safe.abs(real);
      switch (e.type) {
        case 'dir': {
          if (!clear(real, true)) {
            fs.mkdirSync(abs, { mode: 0o700 });
            created.add(real);
          }
          safe.noteDir(real);
          touch(real);
          own(real, abs, e, false);
          if (e.xattrs.size > 0) await setXattrs(abs, e);
          dirTimes.push([abs, e.mtime]);
          break;
        }
        case 'file': {
          clear(real, false);
          touch(real);
          await writeFile(real, abs, e);
          break;
        }
        case 'link': {
          const targetRel = normalizeEntryName(e.linkname);
          const target = targetRel === '' ? undefined : safe.resolve(targetRel, false);
          const tst = target === undefined ? undefined : fs.lstatSync(safe.abs(target), { throwIfNoEntry: false });
          if (target === undefined || !tst || tst.isDirectory()) {
            throw new SnapshotError('LAYER_INVALID', `hard link ${JSON.stringify(e.name)} -> ${JSON.stringify(e.linkname)}: the target is not a file of this layer`);
          }
          if (target === real) break;
          clear(real, false);
          touch(real);
          fs.linkSync(safe.abs(target), abs);
          if (owners) owners.set(real, owners.get(target));
          break;
        }
        case 'symlink': {
          clear(real, false);
          touch(real);
          fs.symlinkSync(e.linkname, abs);
          own(real, abs, e, true);
          if (e.xattrs.size > 0) await setXattrs(abs, e);
          break;
        }
        case 'char':
        case 'block':
        case 'fifo': {
          if (devices === 'skip' || (devices === 'fifos' && e.type !== 'fifo')) break;
          clear(real, false);
          touch(real);
          const mode = (e.mode & 0o777).toString(8);
          if (e.type === 'fifo') await helper.exec(['mkfifo', '-m', mode, '--', abs]);
          else await helper.exec(['mknod', '-m', mode, '--', abs, e.type === 'char' ? 'c' : 'b', String(e.devmajor), String(e.devminor)]);
          own(real, abs, e, false);
          if (e.xattrs.size > 0) await setXattrs(abs, e);
          break;
        }
      }
    }
    for (let i = dirTimes.length - 1; i >= 0; i--) fs.utimesSync(dirTimes[i]![0], dirTimes[i]![1], dirTimes[i]![1]);
    const diffId = source.digest() as Digest;
    if (opts.diffId && opts.diffId !== diffId) {
      throw new SnapshotError('DIFF_ID_MISMATCH', `layer content hashes to ${diffId}, its image config says diff_id ${opts.diffId}`);
    }
    ok = true;
    return { diffId, size: source.bytes, entries };
  } finally {
    if (!ok) dec.cancel();
    await helper.close();
  }
}

/**
 * Run a chown; EINVAL means the id has no mapping in this user namespace (rootless hoist with
 * too few subordinate ids): say so, with the fix, instead of a bare "invalid argument".
 */
function chowning(e: TarEntry, o: { uid: number; gid: number }, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL' || !currentUserNamespace()) throw err;
    throw new SnapshotError(
      'ID_NOT_MAPPED',
      `layer member ${JSON.stringify(e.name)} belongs to ${o.uid}:${o.gid}, an id this user namespace does not map. ` +
        'Rootless hoist maps the ranges of /etc/subuid and /etc/subgid: give this user 65536 ids there ' +
        '(as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 USER), or build as root',
      { cause: err },
    );
  }
}
