import { promises as fsp, type Stats } from 'node:fs';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';

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
 * One file per build context under the store root (a build reads only its own context's entries,
 * not those of every context built in the store), read once per build and written once at its
 * end, atomically (temp in the store's tmp/ + rename; no fsync: losing it costs only re-hashing),
 * and only when something is new. Bounded: past `maxEntries`, the least recently used entries
 * go; past `maxFiles` contexts, the files written longest ago.
 */
export interface StatCacheOptions {
  file: string;
  /** Where the next version is written before it is renamed over `file` (the store's tmp/, same filesystem). */
  tmpDir: string;
  /** Only files below these directories are remembered (the build context). */
  roots: string[];
  maxEntries?: number;
  /** At most this many files in `file`'s directory (one per context; default 64). */
  maxFiles?: number;
  /** A file of an older layout, removed when this one is written. */
  legacy?: string;
  racyMs?: number;
  /** The clock, for tests. */
  now?: () => number;
}

/** [dev, ino, size, mtimeMs, ctimeMs, sha256 hex, last used (ms)] */
type Entry = [number, number, number, number, number, string, number];

/**
 * The file, version 2: `paths`, then six numbers per path in `nums` (dev, ino, size, mtimeMs,
 * ctimeMs, last used) and 64 hex characters per path in `digests`. Flat arrays rather than one
 * small array per path: a context of 20,000 files read and indexed in ~10 ms instead of ~35 ms
 * (JSON.parse of 20,000 little arrays and the Map made from them), with far less garbage.
 */
interface SavedFile {
  version: 2;
  paths: string[];
  nums: number[];
  digests: string;
}

/** The saved entries as read: a path's number is its place in `nums` (×6) and `digests` (×64). */
interface Saved {
  index: Map<string, number>;
  nums: Float64Array;
  digests: string;
}

const VERSION = 2;
const NUMS = 6;
const HEX = 64;
const DEFAULT_MAX = 100_000;
const DEFAULT_MAX_FILES = 64;

/** Where the stat cache of build context `contextDir` lives in the store at `root`. */
export function statCacheFile(root: string, contextDir: string): string {
  const id = createHash('sha256').update(path.resolve(contextDir)).digest('hex').slice(0, 32);
  return path.join(root, 'cache', 'context-stat', `${id}.json`);
}
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
  private saved: Saved | undefined;
  private loading: Promise<Saved> | undefined;
  /** Entries hashed by this build (they win over the saved ones); removed paths map to undefined. */
  private readonly fresh = new Map<string, Entry | undefined>();
  private readonly now: () => number;

  constructor(private readonly o: StatCacheOptions) {
    this.now = o.now ?? Date.now;
  }

  async ready(): Promise<void> {
    await this.load();
  }

  known(abs: string, st: Stats): string | undefined {
    if (!this.saved || !this.below(abs)) return undefined;
    const hex = this.fresh.has(abs) ? knownFresh(this.fresh.get(abs), st, this.now()) : knownSaved(this.saved, abs, st, this.now());
    if (hex !== undefined) this.stats.hits++;
    return hex;
  }

  private below(abs: string): boolean {
    return this.o.roots.some((r) => abs.startsWith(r.endsWith('/') ? r : `${r}/`));
  }

  async digest(abs: string, st: Stats, hash: () => Promise<string>): Promise<string> {
    if (!this.below(abs)) return hash();
    const saved = await this.load();
    const hit = this.known(abs, st);
    if (hit !== undefined) return hit;
    this.stats.misses++;
    const readAt = this.now();
    const hex = await hash();
    if (st.ctimeMs < readAt - (this.o.racyMs ?? DEFAULT_RACY_MS)) {
      this.fresh.set(abs, [st.dev, st.ino, st.size, st.mtimeMs, st.ctimeMs, hex, readAt]);
    } else if (this.fresh.get(abs) !== undefined || saved.index.has(abs)) {
      this.fresh.set(abs, undefined);
    }
    return hex;
  }

  /** Write the cache if anything is new (atomic; the oldest entries beyond the bound dropped). */
  async save(): Promise<void> {
    if (this.fresh.size === 0 || !this.saved) return;
    const doc = toFile(this.entries(), this.o.maxEntries ?? DEFAULT_MAX);
    const text = JSON.stringify(doc);
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
    this.fresh.clear();
    this.saved = fromFile(doc) ?? empty();
    this.loading = Promise.resolve(this.saved);
    if (this.o.legacy) await fsp.rm(this.o.legacy, { force: true });
    await keepNewest(path.dirname(this.o.file), this.o.maxFiles ?? DEFAULT_MAX_FILES);
  }

  /** The saved entries this build did not replace or remove, then this build's. */
  private entries(): Array<[string, Entry]> {
    const out: Array<[string, Entry]> = [];
    const { index, nums, digests } = this.saved!;
    for (const [p, i] of index) {
      if (this.fresh.has(p)) continue;
      const n = nums.subarray(i * NUMS, i * NUMS + NUMS);
      out.push([p, [n[0]!, n[1]!, n[2]!, n[3]!, n[4]!, digests.slice(i * HEX, i * HEX + HEX), n[5]!]]);
    }
    for (const [p, e] of this.fresh) if (e) out.push([p, e]);
    return out;
  }

  private load(): Promise<Saved> {
    this.loading ??= readSaved(this.o.file).then((s) => (this.saved = s));
    return this.loading;
  }
}

/** Removes all but the `max` most recently written cache files of `dir`. */
async function keepNewest(dir: string, max: number): Promise<void> {
  const names = (await fsp.readdir(dir)).filter((n) => n.endsWith('.json'));
  if (names.length <= max) return;
  const dated = await Promise.all(names.map(async (n) => ({ p: path.join(dir, n), t: (await fsp.stat(path.join(dir, n)).catch(() => undefined))?.mtimeMs ?? 0 })));
  dated.sort((a, b) => b.t - a.t);
  await Promise.all(dated.slice(max).map((d) => fsp.rm(d.p, { force: true })));
}

function knownFresh(e: Entry | undefined, st: Stats, now: number): string | undefined {
  if (!e || !(e[0] === st.dev && e[1] === st.ino && e[2] === st.size && e[3] === st.mtimeMs && e[4] === st.ctimeMs)) return undefined;
  e[6] = now;
  return e[5];
}

function knownSaved(s: Saved, abs: string, st: Stats, now: number): string | undefined {
  const i = s.index.get(abs);
  if (i === undefined) return undefined;
  const b = i * NUMS;
  const n = s.nums;
  if (!(n[b] === st.dev && n[b + 1] === st.ino && n[b + 2] === st.size && n[b + 3] === st.mtimeMs && n[b + 4] === st.ctimeMs)) return undefined;
  // a use moves the entry up for the bound (written only together with something new)
  n[b + 5] = now;
  return s.digests.slice(i * HEX, i * HEX + HEX);
}

function toFile(list: Array<[string, Entry]>, max: number): SavedFile {
  const kept = list.length > max ? list.sort((a, b) => b[1][6] - a[1][6]).slice(0, max) : list;
  return {
    version: VERSION,
    paths: kept.map(([p]) => p),
    nums: kept.flatMap(([, e]) => [e[0], e[1], e[2], e[3], e[4], e[6]]),
    digests: kept.map(([, e]) => e[5]).join(''),
  };
}

function empty(): Saved {
  return { index: new Map(), nums: new Float64Array(0), digests: '' };
}

/** The entries of a version 2 file; undefined if it is not one or does not hold together. */
function fromFile(doc: Partial<SavedFile>): Saved | undefined {
  const { paths, nums, digests } = doc;
  if (doc.version !== VERSION || !Array.isArray(paths) || !Array.isArray(nums) || typeof digests !== 'string') return undefined;
  // (the hex is not checked character by character: 1.3 MB for 20,000 files; the file is the
  // store's own, and a wrong digest could only make a cache key that matches nothing)
  if (nums.length !== paths.length * NUMS || digests.length !== paths.length * HEX) return undefined;
  const index = new Map<string, number>();
  paths.forEach((p, i) => index.set(p, i));
  return { index, nums: Float64Array.from(nums), digests };
}

/** The saved entries; a missing, foreign, older or damaged file is an empty cache (it is only a cache). */
async function readSaved(file: string): Promise<Saved> {
  try {
    return fromFile(JSON.parse(await fsp.readFile(file, 'utf8')) as Partial<SavedFile>) ?? empty();
  } catch {
    return empty();
  }
}
