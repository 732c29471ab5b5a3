import { promises as fsp, type Stats } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * Digests of build-context files, reused while a file's stat is unchanged (issue 16), as
 * BuildKit's contenthash keeps them: the key is the path with its device, inode, size, mtime and
 * ctime. mtime alone proves nothing (`touch -d`, `utimes` reset it), but every write and every
 * utimes changes the ctime, which no user can set; so a same-size edit with its mtime reset is
 * still a miss and the content is hashed again.
 *
 * Racy files: a file changed in the same clock tick as (or after) the moment its content was read
 * could change again without a new ctime. Such entries (ctime not older than `racyMs` before the
 * read began) are used for this build only and never written down.
 *
 * One file under the store root, read once per build and written once at its end, atomically
 * (temp in the store's tmp/ + rename; no fsync: losing it costs only re-hashing), and only when something is new.
 * Bounded: past `maxEntries`, the least recently used entries go.
 */
export interface StatCacheOptions {
  file: string;
  /** Where the next version is written before it is renamed over `file` (the store's tmp/, same filesystem). */
  tmpDir: string;
  /** Only files below these directories are remembered (the build context). */
  roots: string[];
  maxEntries?: number;
  racyMs?: number;
  /** The clock, for tests. */
  now?: () => number;
}

/** [dev, ino, size, mtimeMs, ctimeMs, sha256 hex, last used (ms)] */
type Entry = [number, number, number, number, number, string, number];

const VERSION = 1;
const DEFAULT_MAX = 100_000;
const DEFAULT_RACY_MS = 2000;

/** What digestSources asks for a regular file's content digest. */
export interface FileDigests {
  digest(abs: string, st: Stats, hash: () => Promise<string>): Promise<string>;
  /** Loads what `known` answers from. */
  ready?(): Promise<void>;
  /** The digest without hashing, when the stat proves it (after `ready`); undefined otherwise. */
  known?(abs: string, st: Stats): string | undefined;
}

export class StatCache implements FileDigests {
  readonly stats = { hits: 0, misses: 0 };
  private entries: Map<string, Entry> | undefined;
  private loading: Promise<Map<string, Entry>> | undefined;
  private dirty = false;
  private readonly now: () => number;

  constructor(private readonly o: StatCacheOptions) {
    this.now = o.now ?? Date.now;
  }

  async ready(): Promise<void> {
    await this.load();
  }

  known(abs: string, st: Stats): string | undefined {
    if (!this.entries || !this.below(abs)) return undefined;
    const e = this.entries.get(abs);
    if (!e || !same(e, st)) return undefined;
    this.stats.hits++;
    // a use moves the entry up for the bound (written only together with something new)
    e[6] = this.now();
    return e[5];
  }

  private below(abs: string): boolean {
    return this.o.roots.some((r) => abs.startsWith(r.endsWith('/') ? r : `${r}/`));
  }

  async digest(abs: string, st: Stats, hash: () => Promise<string>): Promise<string> {
    if (!this.below(abs)) return hash();
    const entries = await this.load();
    const hit = this.known(abs, st);
    if (hit !== undefined) return hit;
    const e = entries.get(abs);
    this.stats.misses++;
    const readAt = this.now();
    const hex = await hash();
    if (st.ctimeMs < readAt - (this.o.racyMs ?? DEFAULT_RACY_MS)) {
      entries.set(abs, [st.dev, st.ino, st.size, st.mtimeMs, st.ctimeMs, hex, readAt]);
      this.dirty = true;
    } else if (e) {
      entries.delete(abs);
      this.dirty = true;
    }
    return hex;
  }

  /** Write the cache if anything is new (atomic; the oldest entries beyond the bound dropped). */
  async save(): Promise<void> {
    if (!this.dirty || !this.entries) return;
    const max = this.o.maxEntries ?? DEFAULT_MAX;
    let list = [...this.entries];
    if (list.length > max) list = list.sort((a, b) => b[1][6] - a[1][6]).slice(0, max);
    const text = JSON.stringify({ version: VERSION, entries: Object.fromEntries(list) });
    await fsp.mkdir(path.dirname(this.o.file), { recursive: true, mode: 0o700 });
    await fsp.mkdir(this.o.tmpDir, { recursive: true, mode: 0o700 });
    // the pid in the name lets the store's temp-file reclaim remove it if this process dies
    const tmp = path.join(this.o.tmpDir, `context-stat-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      await fsp.writeFile(tmp, text, { mode: 0o600 });
      await fsp.rename(tmp, this.o.file);
    } catch (e) {
      await fsp.rm(tmp, { force: true });
      throw e;
    }
    this.dirty = false;
  }

  private load(): Promise<Map<string, Entry>> {
    this.loading ??= readEntries(this.o.file).then((m) => (this.entries = m));
    return this.loading;
  }
}

function same(e: Entry, st: Stats): boolean {
  return e[0] === st.dev && e[1] === st.ino && e[2] === st.size && e[3] === st.mtimeMs && e[4] === st.ctimeMs;
}

/** The saved entries; a missing, foreign or damaged file is an empty cache (it is only a cache). */
async function readEntries(file: string): Promise<Map<string, Entry>> {
  try {
    const doc = JSON.parse(await fsp.readFile(file, 'utf8')) as { version?: number; entries?: Record<string, Entry> };
    if (doc.version !== VERSION || typeof doc.entries !== 'object' || doc.entries === null) return new Map();
    return new Map(Object.entries(doc.entries).filter(([, e]) => Array.isArray(e) && e.length === 7 && typeof e[5] === 'string'));
  } catch {
    return new Map();
  }
}
