import * as fs from 'node:fs';
import * as path from 'node:path';
import { SnapshotError } from './errors.js';

/**
 * The one module through which layer extraction turns member names into paths. Every layer is
 * hostile: names are normalised and checked lexically, and every parent directory is resolved
 * component by component with lstat, so nothing is ever created, written or removed outside the
 * root — whatever symlinks earlier members (or earlier layers) left there.
 */

const MAX_COMPONENT = 255;

function unsafe(msg: string): SnapshotError {
  return new SnapshotError('LAYER_UNSAFE_PATH', msg);
}

/**
 * A member name as a relative path without `.`/empty components (`''` is the root itself).
 * Absolute names, `..` components and NUL bytes are rejected.
 */
export function normalizeEntryName(name: string): string {
  if (name.includes('\0')) throw unsafe(`layer member name contains a NUL byte: ${JSON.stringify(name)}`);
  if (name.startsWith('/')) throw unsafe(`layer member has an absolute path: ${JSON.stringify(name)}`);
  const parts: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') throw unsafe(`layer member path escapes the root: ${JSON.stringify(name)}`);
    if (Buffer.byteLength(c) > MAX_COMPONENT) {
      throw new SnapshotError('LAYER_INVALID', `layer member path has a component longer than ${MAX_COMPONENT} bytes`);
    }
    parts.push(c);
  }
  return parts.join('/');
}

/** The member that marks a directory opaque (its lower content hidden). */
export const OPAQUE_WHITEOUT = '.wh..wh..opq';

/**
 * The name a whiteout member `.wh.<name>` deletes, or undefined for other aufs metadata
 * (`.wh..wh.plnk`, ...). A whiteout of nothing, `.` or `..` is refused. Not for the opaque marker.
 */
export function whiteoutTarget(base: string): string | undefined {
  if (base.startsWith('.wh..wh.')) return undefined;
  const name = base.slice('.wh.'.length);
  if (name === '' || name === '.' || name === '..') throw unsafe(`invalid whiteout ${JSON.stringify(base)}`);
  return name;
}

export function splitParent(rel: string): { parent: string; base: string } {
  const i = rel.lastIndexOf('/');
  return i < 0 ? { parent: '', base: rel } : { parent: rel.slice(0, i), base: rel.slice(i + 1) };
}

function isWithin(dirRel: string, rel: string): boolean {
  return dirRel === '' || rel === dirRel || rel.startsWith(dirRel + '/');
}

/**
 * What a symlink with an absolute target means while resolving parents: `refuse` (image layers:
 * a layer has no business writing through one) or `reroot` (ADD's archives, which Docker untars
 * chrooted into the destination: the target is taken from the root, as `/var/run -> /run`
 * resolves inside an image).
 */
export type AbsoluteSymlinks = 'refuse' | 'reroot';

/**
 * Resolves parents of member names inside `root`. Directory components must be real
 * directories; a symlink component is followed only when it stays inside the root (as a
 * container would see it): a relative link that climbs out is refused, and so is an absolute
 * one unless `absolute` is `reroot` (then it is resolved from the root). Nothing is ever
 * followed by the host: every component is resolved here, so no write lands outside the root.
 * Resolved directories are cached by their real relative path; callers invalidate what they remove.
 * Synchronous on purpose: these are single short syscalls (like tar's), and a thread-pool hop per
 * path component costs far more than the syscall itself.
 */
export class SafeRoot {
  private readonly dirs = new Set<string>(['']);
  constructor(
    readonly root: string,
    private readonly onCreate?: (real: string) => void,
    private readonly absolute: AbsoluteSymlinks = 'refuse',
  ) {}

  abs(rel: string): string {
    return rel === '' ? this.root : path.join(this.root, rel);
  }

  /** Forget cached directories at or below `rel` (it was removed or replaced). */
  invalidate(rel: string): void {
    if (this.dirs.size === 0) return;
    for (const d of this.dirs) if (d !== '' && isWithin(rel, d)) this.dirs.delete(d);
  }

  /** Note a directory this apply created itself. */
  noteDir(rel: string): void {
    this.dirs.add(rel);
  }

  /**
   * The real relative path of directory `rel`, creating missing directories (and replacing
   * non-directories, as a directory in an upper layer hides a file below) when `create` is set.
   * Returns undefined when it does not exist and `create` is false.
   */
  resolveDir(rel: string, create: boolean): string | undefined {
    const todo = rel === '' ? [] : rel.split('/').reverse();
    const cur: string[] = [];
    let hops = 0;
    while (todo.length > 0) {
      const c = todo.pop()!;
      if (c === '' || c === '.') continue;
      if (c === '..') {
        if (cur.length === 0) throw unsafe(`a symlink in ${JSON.stringify(rel)} points outside the root`);
        cur.pop();
        continue;
      }
      const candidate = cur.length === 0 ? c : `${cur.join('/')}/${c}`;
      if (this.dirs.has(candidate)) {
        cur.push(c);
        continue;
      }
      const abs = this.abs(candidate);
      const st = fs.lstatSync(abs, { throwIfNoEntry: false });
      if (!st) {
        if (!create) return undefined;
        fs.mkdirSync(abs, { mode: 0o755 });
        this.dirs.add(candidate);
        this.onCreate?.(candidate);
        cur.push(c);
        continue;
      }
      if (st.isDirectory()) {
        this.dirs.add(candidate);
        cur.push(c);
      } else if (st.isSymbolicLink()) {
        if (++hops > 40) throw unsafe(`too many levels of symlinks resolving ${JSON.stringify(rel)}`);
        const target = fs.readlinkSync(abs);
        if (target.startsWith('/')) {
          if (this.absolute === 'refuse') {
            throw unsafe(`refusing to write through ${JSON.stringify(candidate)}: it is a symlink to the absolute path ${JSON.stringify(target)}`);
          }
          cur.length = 0;
        }
        for (const t of target.split('/').reverse()) todo.push(t);
      } else {
        if (!create) return undefined;
        fs.rmSync(abs, { force: true });
        fs.mkdirSync(abs, { mode: 0o755 });
        this.dirs.add(candidate);
        this.onCreate?.(candidate);
        cur.push(c);
      }
    }
    return cur.join('/');
  }

  /** Real relative path for member `rel` (its parent resolved; the last component never followed). */
  resolve(rel: string, create: boolean): string | undefined {
    if (rel === '') return '';
    const { parent, base } = splitParent(rel);
    const p = this.resolveDir(parent, create);
    if (p === undefined) return undefined;
    return p === '' ? base : `${p}/${base}`;
  }
}
