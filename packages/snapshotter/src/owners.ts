import { promises as fsp } from 'node:fs';
import { writeFileAtomic } from '@hoist/oci';
import { SnapshotError } from './errors.js';

export interface Owner {
  uid: number;
  gid: number;
}

/** What writes into an ownership record: the record itself, or a part of it below a directory (Ownership.at). */
export interface OwnerRecord {
  get(rel: string): Owner;
  set(rel: string, o: Owner): void;
  removeTree(rel: string): void;
}

/**
 * The ownership of a tree that this process cannot give away on disk (the no-privilege mode:
 * not root, no user namespace, so every file is the builder's own). Kept by path (tar member
 * names: relative, `/`-separated), only for objects not owned by 0:0 — in an image almost
 * everything is root's, so a record stays small (Debian bookworm: a dozen entries). Seeded from
 * the layers' tar headers when they are unpacked, changed by COPY/ADD --chown, WORKDIR and RUN
 * (whose chowns fakeroot records), and read by the layer writer for the tar headers.
 *
 * Modes need no record: the builder owns every file, so it can set every permission bit on disk
 * (setuid/setgid included; the group of each file is its own group). Device nodes cannot be made
 * without privilege and are left out, as they are in a user namespace.
 */
export class Ownership implements OwnerRecord {
  private readonly m: Map<string, Owner>;

  constructor(entries: Iterable<[string, Owner]> = []) {
    this.m = new Map();
    for (const [p, o] of entries) this.set(p, o);
  }

  get size(): number {
    return this.m.size;
  }

  /** The owner of `rel`, 0:0 if the record does not name it. */
  get(rel: string): Owner {
    return this.m.get(rel) ?? { uid: 0, gid: 0 };
  }

  /** Is `rel` named (owned by something other than 0:0)? */
  has(rel: string): boolean {
    return this.m.has(rel);
  }

  set(rel: string, o: Owner): void {
    if (o.uid === 0 && o.gid === 0) this.m.delete(rel);
    else this.m.set(rel, { uid: o.uid, gid: o.gid });
  }

  /** Forget `rel` and, if it was a directory, everything below it (deleted or replaced). */
  removeTree(rel: string): void {
    if (rel === '') {
      this.m.clear();
      return;
    }
    const below = `${rel}/`;
    for (const k of [...this.m.keys()]) if (k === rel || k.startsWith(below)) this.m.delete(k);
  }

  /** Forget everything below directory `rel` but keep `rel` itself (an opaque directory). */
  removeChildren(rel: string): void {
    const below = rel === '' ? '' : `${rel}/`;
    for (const k of [...this.m.keys()]) if (k !== rel && k.startsWith(below)) this.m.delete(k);
  }

  /** The part of this record below directory `prefix` (relative): for ADD's archives unpacked there. */
  at(prefix: string): OwnerRecord {
    if (prefix === '') return this;
    const full = (rel: string): string => (rel === '' ? prefix : `${prefix}/${rel}`);
    return {
      get: (rel) => this.get(full(rel)),
      set: (rel, o) => this.set(full(rel), o),
      removeTree: (rel) => this.removeTree(full(rel)),
    };
  }

  entries(): Array<[string, Owner]> {
    return [...this.m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** Make this record a copy of `other` (a mount's record after a RUN). */
  assign(other: Ownership): void {
    this.m.clear();
    for (const [k, o] of other.m) this.m.set(k, o);
  }

  clone(): Ownership {
    return new Ownership(this.m.entries());
  }

  equals(other: Ownership): boolean {
    if (other.size !== this.size) return false;
    for (const [k, o] of this.m) {
      const p = other.m.get(k);
      if (!p || p.uid !== o.uid || p.gid !== o.gid) return false;
    }
    return true;
  }

  /** One line per entry, sorted: `uid gid path` (paths may hold spaces, never newlines in a tar name we keep). */
  serialize(): string {
    return this.entries()
      .map(([p, o]) => `${o.uid} ${o.gid} ${JSON.stringify(p)}\n`)
      .join('');
  }

  static parse(text: string, what = 'ownership record'): Ownership {
    const out = new Ownership();
    for (const [i, line] of text.split('\n').entries()) {
      if (line === '') continue;
      const m = /^(\d+) (\d+) (".*")$/.exec(line);
      if (!m) throw new SnapshotError('STORE_CORRUPT', `${what}, line ${i + 1}: not "uid gid \\"path\\"": ${JSON.stringify(line.slice(0, 80))}`);
      out.set(JSON.parse(m[3]!) as string, { uid: Number(m[1]), gid: Number(m[2]) });
    }
    return out;
  }

  static async load(file: string): Promise<Ownership | undefined> {
    const text = await fsp.readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined;
      throw e;
    });
    return text === undefined ? undefined : Ownership.parse(text, file);
  }

  async save(file: string): Promise<void> {
    await writeFileAtomic(file, this.serialize());
  }
}
