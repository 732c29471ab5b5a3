import type { Readable } from 'node:stream';
import type { Digest } from '@hoist/oci';
import { decompress } from './compress.js';
import { SnapshotError, throwIfAborted } from './errors.js';
import { OPAQUE_WHITEOUT, normalizeEntryName, splitParent, whiteoutTarget } from './safe-path.js';
import { ByteSource, DEFAULT_MAX_LAYER_BYTES, readTar, type ReadLimits, type TarEntry } from './tar/reader.js';

export interface CheckLayerOptions extends ReadLimits {
  /** The diff_id the layer is announced with (DIFF_ID_MISMATCH unless its content hashes to it). */
  diffId?: Digest;
  signal?: AbortSignal;
}

export interface LayerCheckResult {
  diffId: Digest;
  /** Uncompressed size. */
  size: number;
  entries: number;
}

function unsafe(msg: string): SnapshotError {
  return new SnapshotError('LAYER_UNSAFE_PATH', msg);
}

/**
 * The checks extraction makes on a layer's members, without a target directory (nothing is
 * written): names and hard-link targets stay inside the root (no absolute paths, no `..`),
 * whiteouts name something, only a directory may name the root, and no member is written
 * through a symlink of this layer that SafeRoot would refuse (absolute, or climbing out).
 * Symlinks of lower layers are not known here; extraction still checks those.
 */
export class MemberChecker {
  /** Symlinks this layer created, by real relative path. */
  private readonly links = new Map<string, string>();
  /** Every directory a link was created below (may hold some whose links are gone). */
  private readonly linkDirs = new Set<string>();

  check(e: TarEntry): void {
    const rel = normalizeEntryName(e.name);
    if (rel === '') {
      if (e.type !== 'dir') throw new SnapshotError('LAYER_INVALID', `layer member ${JSON.stringify(e.name)} names the root but is not a directory`);
      return;
    }
    const { parent, base } = splitParent(rel);
    const realParent = this.resolveDir(parent);
    if (base.startsWith('.wh.')) {
      if (base === OPAQUE_WHITEOUT) return;
      const name = whiteoutTarget(base);
      if (name !== undefined) this.forget(realParent === '' ? name : `${realParent}/${name}`);
      return;
    }
    if (e.type === 'link') {
      const target = linkTarget(e);
      if (target === '') throw new SnapshotError('LAYER_INVALID', `hard link ${JSON.stringify(e.name)} -> ${JSON.stringify(e.linkname)}: the target is not a file of this layer`);
      this.resolveDir(splitParent(target).parent);
    }
    const real = realParent === '' ? base : `${realParent}/${base}`;
    if (e.type === 'dir') this.links.delete(real); // an existing directory stays, with what is below it
    else this.forget(real);
    if (e.type === 'symlink') this.note(real, e.linkname);
  }

  private note(real: string, target: string): void {
    this.links.set(real, target);
    for (let p = splitParent(real).parent; p !== '' && !this.linkDirs.has(p); p = splitParent(p).parent) this.linkDirs.add(p);
  }

  /** `real` is replaced or removed: so are the links at and below it. */
  private forget(real: string): void {
    this.links.delete(real);
    if (!this.linkDirs.has(real)) return;
    for (const k of this.links.keys()) if (k.startsWith(`${real}/`)) this.links.delete(k);
  }

  /** A parent directory's real path through this layer's symlinks, refused as SafeRoot.resolveDir refuses. */
  private resolveDir(rel: string): string {
    if (this.links.size === 0) return rel;
    const todo = rel === '' ? [] : rel.split('/').reverse();
    const cur: string[] = [];
    let path = '';
    let hops = 0;
    while (todo.length > 0) {
      const c = todo.pop()!;
      if (c === '' || c === '.') continue;
      if (c === '..') {
        if (cur.length === 0) throw unsafe(`a symlink in ${JSON.stringify(rel)} points outside the root`);
        cur.pop();
        path = cur.join('/');
        continue;
      }
      const candidate = path === '' ? c : `${path}/${c}`;
      const target = this.links.get(candidate);
      if (target === undefined) {
        cur.push(c);
        path = candidate;
        continue;
      }
      if (++hops > 40) throw unsafe(`too many levels of symlinks resolving ${JSON.stringify(rel)}`);
      if (target.startsWith('/')) throw unsafe(`refusing to write through ${JSON.stringify(candidate)}: it is a symlink to the absolute path ${JSON.stringify(target)}`);
      for (const t of target.split('/').reverse()) todo.push(t);
    }
    return path;
  }
}

/** A hard link's target as a member name; one that leaves the root is refused, naming the link. */
function linkTarget(e: TarEntry): string {
  try {
    return normalizeEntryName(e.linkname);
  } catch (err) {
    const x = err as SnapshotError;
    throw new SnapshotError(x.code, `hard link ${JSON.stringify(e.name)} -> ${JSON.stringify(e.linkname)}: ${x.message}`, { cause: err });
  }
}

/**
 * Read a layer blob (gzip, zstd or uncompressed; detected) as extraction would, without writing
 * anything: a well-formed tar within the size limits, every member checked (MemberChecker), and
 * the uncompressed stream hashing to `opts.diffId` when given. Streams with bounded memory;
 * bodies are skipped, not buffered.
 */
export async function checkLayer(src: Readable | AsyncIterable<Buffer>, opts: CheckLayerOptions = {}): Promise<LayerCheckResult> {
  const dec = await decompress(src);
  const source = new ByteSource(dec.stream, opts.maxBytes ?? DEFAULT_MAX_LAYER_BYTES);
  const members = new MemberChecker();
  let entries = 0;
  let ok = false;
  try {
    for await (const e of readTar(source, opts)) {
      throwIfAborted(opts.signal);
      entries++;
      members.check(e);
    }
    const diffId = source.digest() as Digest;
    if (opts.diffId && opts.diffId !== diffId) {
      throw new SnapshotError('DIFF_ID_MISMATCH', `layer content hashes to ${diffId}, its image config says diff_id ${opts.diffId}`);
    }
    ok = true;
    return { diffId, size: source.bytes, entries };
  } finally {
    if (!ok) dec.cancel();
  }
}
