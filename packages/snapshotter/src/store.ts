import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, promises as fsp, readdirSync, readFileSync, readlinkSync, renameSync, statSync, symlinkSync, type Stats } from 'node:fs';
import * as path from 'node:path';
import { currentUserNamespace, digestHex, ensurePrivateDir, writeFileAtomic, type Descriptor, type Digest } from '@hoist/oci';
import { SnapshotError } from './errors.js';
import type { OverlayXattrs } from './overlay.js';

/**
 * On-disk layout of the snapshot root:
 *
 *   snapshots/<hex>/diff        a layer as an overlay lower dir (whiteouts as char 0/0, opaque xattrs)
 *   snapshots/<hex>/layer.json  {diffId, descriptor?, link}; present means complete
 *   l/<id>                      short link -> ../snapshots/<hex>/diff (mount option length)
 *   chains/<chainhex>           copy driver: the flattened tree of a chain of layers
 *   owners/<chainhex>           copy driver without privileges: who owns what in that tree ("uid gid \"path\"")
 *   mounts/<pid>-<rand>/        an active mount: upper/ work/ merged/ (or root/ for copy)
 *   tmp/<what>-<pid>-<rand>     work in progress; renamed into place when complete
 *   empty/                      an empty dir (bottom lower for scratch and single-layer views)
 *   driver.json                 {key, driver}: the probed driver for this kernel, device and uid
 *   overlay-xattrs              "user": made inside a user namespace (overlay bookkeeping in
 *                               user.overlay.*); absent: made by root (trusted.overlay.*)
 */
export interface SnapshotRecord {
  diffId: Digest;
  descriptor?: Descriptor;
  link?: string;
}

/** A small file's text, undefined when it cannot be read (synchronous: see Layout.madeBefore). */
export function readSmallFile(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** The names in a directory, none when it cannot be read (synchronous: see Layout.madeBefore). */
export function listNames(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** The directories of a snapshot root (see above). */
export const LAYOUT_DIRS = ['snapshots', 'l', 'chains', 'mounts', 'tmp', 'empty'] as const;

export class Layout {
  /**
   * Records of layers that are unpacked here and have their blob (link and descriptor): such a
   * record does not change while the layer lives, and a build reads the records of a chain's
   * layers at every mount (issue 16), so once read they are kept. A layer removed (prune holds
   * the store exclusively) is forgotten with it.
   */
  private readonly complete = new Map<Digest, SnapshotRecord>();

  constructor(readonly root: string) {}
  get links(): string {
    return path.join(this.root, 'l');
  }
  get mounts(): string {
    return path.join(this.root, 'mounts');
  }
  get tmp(): string {
    return path.join(this.root, 'tmp');
  }
  get empty(): string {
    return path.join(this.root, 'empty');
  }
  snapshot(diffId: Digest): string {
    return path.join(this.root, 'snapshots', digestHex(diffId));
  }
  chain(chainId: Digest): string {
    return path.join(this.root, 'chains', digestHex(chainId));
  }
  /** No-privilege mode: the ownership record of a chain's tree (see Ownership), written before the tree is renamed into place. */
  owners(chainId: Digest): string {
    return path.join(this.root, 'owners', digestHex(chainId));
  }
  /**
   * The root is private (0700): snapshots hold unpacked images, setuid files and device nodes
   * included. Only the directories missing are made: for a store made before (every run but
   * the first) one stat and one readdir prove the layout. Returns the root's stat.
   */
  async init(): Promise<Stats> {
    const made = this.madeBefore();
    if (made) return made;
    const [st, entries] = await Promise.all([ensurePrivateDir(this.root), fsp.readdir(this.root, { withFileTypes: true }).catch(() => [])]);
    const there = new Set(entries.filter((e) => e.isDirectory()).map((e) => e.name));
    await Promise.all(LAYOUT_DIRS.filter((d) => !there.has(d)).map((d) => fsp.mkdir(path.join(this.root, d), { recursive: true })));
    return st;
  }
  /**
   * The root's stat when the layout is complete and private already, else undefined. This and
   * the other reads of tiny files that every open makes (the xattr marker, the driver facts,
   * the stale-work listings) are synchronous on purpose (issue 16): measured in a fresh process on
   * a 2-core machine, Snapshotter.open of a store made before took 1.0-1.2 ms this way against
   * 1.5-1.6 ms with awaited calls one after the other and 1.8-2.0 ms with them all at once:
   * the cost is each call's promise and thread-pool round trip, not the kernel's work.
   */
  private madeBefore(): Stats | undefined {
    try {
      const st = statSync(this.root);
      if (!st.isDirectory() || (st.mode & 0o7777) !== 0o700) return undefined;
      const dirs = new Set(readdirSync(this.root, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name));
      return LAYOUT_DIRS.every((d) => dirs.has(d)) ? st : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * The overlay xattr kind of this store. A new store made inside a user namespace is marked
   * `user`; a root store (unmarked, with snapshots) cannot be used there: its opaque markers are
   * trusted.* xattrs a namespace cannot read, and its files belong to ids it does not map.
   */
  async overlayXattrs(): Promise<OverlayXattrs> {
    const marker = path.join(this.root, 'overlay-xattrs');
    const text = readSmallFile(marker);
    if (text !== undefined) return text.trim() === 'user' ? 'user' : 'trusted';
    if (!currentUserNamespace()) return 'trusted';
    if ((await fsp.readdir(path.join(this.root, 'snapshots'))).length > 0) {
      throw new SnapshotError(
        'STORE_MODE',
        `the snapshots in ${this.root} were made by root; rootless hoist needs a store of its own (the default $XDG_DATA_HOME/hoist, or --root DIR)`,
      );
    }
    await writeFileAtomic(marker, 'user\n');
    return 'user';
  }

  /** A fresh path under tmp/ named so that cleanupStale can tell whose it is. */
  tmpPath(what: string): string {
    return path.join(this.tmp, `${what}-${process.pid}-${randomBytes(6).toString('hex')}`);
  }
  async record(diffId: Digest): Promise<SnapshotRecord | undefined> {
    const known = this.complete.get(diffId);
    if (known) return known;
    try {
      // synchronous, as a tiny file read before every mount: awaited, it queued behind the thread
      // pool's other work (a RUN's sandbox made ready meanwhile) for up to 10 ms (issue 16)
      const rec = JSON.parse(readFileSync(path.join(this.snapshot(diffId), 'layer.json'), 'utf8')) as SnapshotRecord;
      if (rec.link !== undefined && rec.descriptor !== undefined) this.complete.set(diffId, rec);
      return rec;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  /**
   * Create (or find) the short link name for a snapshot: 8 base-32 characters derived from the
   * diff_id; on the rare collision, the next derivation.
   */
  async ensureLink(diffId: Digest): Promise<string> {
    const target = `../snapshots/${digestHex(diffId)}/diff`;
    for (let n = 0; ; n++) {
      const id = shortId(`${diffId}:${n}`);
      const p = path.join(this.links, id);
      try {
        // synchronous, as are the record's write and the rename after it (one metadata call
        // each; awaited, each would wait a turn of the thread pool: issue 16)
        symlinkSync(target, p);
        return id;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        if (readlinkSync(p) === target) return id;
      }
    }
  }

  /**
   * Move a finished snapshot dir (`<tmp>/diff`) into place with its record. Atomic: one rename
   * of the whole directory; if another process got there first, ours is discarded.
   */
  async adoptSnapshot(tmpDir: string, rec: SnapshotRecord): Promise<void> {
    rec.link = await this.ensureLink(rec.diffId);
    // not fsynced, as the unpacked tree it describes is not (README: after a power loss the
    // snapshots are deleted and unpacked again from their verified blobs)
    await writeFileAtomic(path.join(tmpDir, 'layer.json'), JSON.stringify(rec), { sync: false });
    mkdirSync(path.dirname(this.snapshot(rec.diffId)), { recursive: true });
    try {
      renameSync(tmpDir, this.snapshot(rec.diffId));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw e;
      const existing = await this.record(rec.diffId);
      if (existing && !existing.link) {
        // recorded by the copy driver only: give it its unpacked dir
        await fsp.rename(path.join(tmpDir, 'diff'), path.join(this.snapshot(rec.diffId), 'diff')).catch(() => undefined);
        await writeFileAtomic(path.join(this.snapshot(rec.diffId), 'layer.json'), JSON.stringify({ ...existing, ...rec }), { sync: false });
      }
      await fsp.rm(tmpDir, { recursive: true, force: true });
    }
  }

  /** Record a layer without unpacking it (copy driver: applied from its blob when a chain needs it). */
  async recordOnly(rec: SnapshotRecord): Promise<void> {
    const dir = this.snapshot(rec.diffId);
    const existing = await this.record(rec.diffId);
    if (existing?.descriptor || (existing && !rec.descriptor)) return;
    await fsp.mkdir(dir, { recursive: true });
    await writeFileAtomic(path.join(dir, 'layer.json'), JSON.stringify({ ...existing, ...rec }), { sync: false });
  }

  /** Forget what record() remembers of a layer (it is being removed). */
  forget(diffId: Digest): void {
    this.complete.delete(diffId);
  }

  async linkOf(diffId: Digest): Promise<string> {
    const rec = await this.record(diffId);
    if (!rec?.link) throw new SnapshotError('SNAPSHOT_UNKNOWN', `layer ${diffId} is not unpacked in ${this.root}; call ensureLayer first`);
    return rec.link;
  }
}

function shortId(s: string): string {
  const h = createHash('sha256').update(s).digest();
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  let out = '';
  let bits = 0;
  let acc = 0;
  for (let i = 0; out.length < 8; i++) {
    acc = (acc << 8) | h[i]!;
    bits += 8;
    while (bits >= 5 && out.length < 8) {
      out += alphabet[(acc >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}


export { pidAlive } from '@hoist/oci';

/** The pid embedded in a `<what>-<pid>-<rand>` or `<pid>-<rand>` name. */
export function pidOf(name: string): number | undefined {
  const m = /(?:^|-)(\d+)-[0-9a-f]+$/.exec(name);
  return m ? Number(m[1]) : undefined;
}
