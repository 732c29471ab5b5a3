import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, promises as fsp, readdirSync, readlinkSync, type Stats } from 'node:fs';
import * as path from 'node:path';
import { BuildError } from './errors.js';
import { goPathMatcher, hasWildcards } from '@hoist/parser';
import { secureJoin } from './rootfs.js';
import type { FileDigests } from './stat-cache.js';

/** Decides whether a path (relative to the source root, `/`-separated) is excluded. */
export interface PathFilter {
  matches(rel: string): boolean;
  /**
   * Whether something below the excluded directory `dir` can be re-included (a `!` exception);
   * when false it is skipped whole. Without it, every excluded directory is searched.
   */
  mayMatchUnder?(dir: string): boolean;
}

export interface SourceEntry {
  /** Path below the copied item ('' for the item itself). */
  rel: string;
  abs: string;
  stat: Stats;
  linkTarget?: string;
}

/** One matched COPY/ADD source: a file, symlink or directory (whose contents are copied). */
export interface SourceItem {
  /** Path relative to the source root (context or stage root), for messages and keys. */
  path: string;
  name: string;
  stat: Stats;
  entries: SourceEntry[];
  /** With `COPY --parents`: where below the destination the item goes (its path from the pivot). */
  destRel?: string;
}

/** Normalise a source path: relative to the root, no leading `/`, `..` clamped at the root. */
export function cleanRel(p: string): string {
  const out: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') out.pop();
    else out.push(c);
  }
  return out.join('/');
}

async function expandGlob(root: string, rel: string): Promise<string[]> {
  const comps = rel === '' ? [] : rel.split('/');
  let current: string[] = [''];
  for (const comp of comps) {
    const next: string[] = [];
    if (!hasWildcards(comp)) {
      for (const c of current) next.push(c === '' ? comp : `${c}/${comp}`);
    } else {
      const match = goPathMatcher(comp);
      for (const c of current) {
        let names: string[];
        try {
          names = await fsp.readdir(await secureJoin(root, c));
        } catch {
          continue;
        }
        for (const n of names.sort()) if (match(n)) next.push(c === '' ? n : `${c}/${n}`);
      }
    }
    current = next;
  }
  return current;
}

type CollectOptions = { filter?: PathFilter; exclude?: PathFilter; allowEmptyWildcard?: boolean };

/**
 * Match COPY/ADD sources inside `root` (the build context or another stage's root). Symlinks
 * named as sources are followed inside the root, never out of it; symlinks inside copied
 * directories stay symlinks. Excluded paths (.dockerignore, --exclude) are left out; as in
 * BuildKit's context transfer, the context root is always there, and an excluded directory is
 * still there when a `!` exception re-includes something below it.
 */
export async function collectSources(root: string, patterns: string[], opts: CollectOptions = {}): Promise<SourceItem[]> {
  const items: SourceItem[] = [];
  for (const pattern of patterns) {
    const rel = cleanRel(pattern);
    const found: SourceItem[] = [];
    for (const m of await expandGlob(root, rel)) {
      const item = await collectMatch(root, m, opts);
      if (item) found.push(item);
    }
    // as BuildKit: a wildcard that matches nothing copies nothing (a plain path must exist)
    if (found.length === 0 && !(hasWildcards(rel) && (opts.allowEmptyWildcard ?? true))) {
      throw new BuildError('COPY_SOURCE_NOT_FOUND', `"${pattern}" not found: no such file or directory in the build context (or it is excluded by .dockerignore)`);
    }
    items.push(...found);
  }
  return items;
}

/** One matched path as a source item, or undefined when it is missing or wholly excluded. */
async function collectMatch(root: string, m: string, opts: CollectOptions): Promise<SourceItem | undefined> {
  const excluded = opts.filter?.matches(m) ?? false;
  if (excluded && !(opts.filter!.mayMatchUnder?.(m) ?? true)) return undefined;
  const abs = await secureJoin(root, m);
  let st: Stats;
  try {
    st = await fsp.stat(abs);
  } catch {
    return undefined;
  }
  if (excluded && !st.isDirectory()) return undefined;
  const item: SourceItem = { path: m, name: m === '' ? '' : path.posix.basename(m), stat: st, entries: [] };
  if (st.isDirectory()) {
    await walk(abs, m, '', item.entries, opts);
    // an excluded directory is kept only for what its exceptions re-include
    if (excluded && item.entries.length <= 1) return undefined;
  } else {
    item.entries.push({ rel: '', abs, stat: st });
  }
  return item;
}

/** Whether an excluded directory may still hold re-included paths (so it must be searched). */
function mayReinclude(opts: CollectOptions, ctxRel: string, childRel: string, by: { filter: boolean; exclude: boolean }): boolean {
  const viaFilter = !by.filter || (opts.filter!.mayMatchUnder?.(ctxRel) ?? true);
  const viaExclude = !by.exclude || (opts.exclude!.mayMatchUnder?.(childRel) ?? true);
  return viaFilter && viaExclude;
}

/**
 * How many files of one context are hashed at once: each small read is a few round trips to
 * libuv's thread pool, and a context of 20,000 files spent most of its hashing waiting on them
 * one after the other (issue 16).
 */
export const SOURCE_IO = 32;

/** `fn` over `items` with at most `limit` calls running at once; results in the items' order. */
export async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

async function walk(abs: string, rootRel: string, rel: string, out: SourceEntry[], opts: CollectOptions): Promise<void> {
  const st = await fsp.lstat(abs);
  out.push({ rel, abs, stat: st });
  if (!st.isDirectory()) return;
  await walkChildren(abs, { rootRel, rel, out, opts });
}

/**
 * A directory's children in name order, read with synchronous calls: an lstat of a file whose
 * inode is cached costs a few microseconds, a round trip to libuv's thread pool several times
 * that (20,000 files: ~50 ms synchronous, ~200 ms 32 at a time, ~800 ms one after the other).
 * The event loop gets a turn after every directory.
 */
async function walkChildren(abs: string, w: { rootRel: string; rel: string; out: SourceEntry[]; opts: CollectOptions }): Promise<void> {
  const { rootRel, rel, out, opts } = w;
  const names = readdirSync(abs).sort();
  const children = names.map((n) => {
    const childAbs = path.join(abs, n);
    const cst = lstatSync(childAbs);
    return { n, childAbs, cst, linkTarget: cst.isSymbolicLink() ? readlinkSync(childAbs) : undefined };
  });
  await new Promise<void>((resolve) => setImmediate(resolve));
  for (const { n, childAbs, cst, linkTarget } of children) {
    const childRel = rel === '' ? n : `${rel}/${n}`;
    const ctxRel = rootRel === '' ? childRel : `${rootRel}/${childRel}`;
    const by = { filter: opts.filter?.matches(ctxRel) ?? false, exclude: opts.exclude?.matches(childRel) ?? false };
    if (by.filter || by.exclude) {
      if (cst.isDirectory() && mayReinclude(opts, ctxRel, childRel, by)) {
        const sub: SourceEntry[] = [];
        await walk(childAbs, rootRel, childRel, sub, opts);
        // keep the directory only if something below it is re-included
        if (sub.length > 1) out.push(...sub);
      }
      continue;
    }
    if (cst.isSymbolicLink()) {
      out.push({ rel: childRel, abs: childAbs, stat: cst, linkTarget: linkTarget! });
    } else if (cst.isDirectory()) {
      await walk(childAbs, rootRel, childRel, out, opts);
    } else {
      out.push({ rel: childRel, abs: childAbs, stat: cst });
    }
  }
}

/** Files up to this size are hashed from one read (open, read, close) rather than a stream. */
const SMALL_FILE = 256 * 1024;

async function fileDigest(abs: string, size: number): Promise<string> {
  const h = createHash('sha256');
  if (size <= SMALL_FILE) {
    const fh = await fsp.open(abs, 'r');
    try {
      // one byte more than the stat said: a file that grew is read to its end below
      const buf = Buffer.allocUnsafe(size + 1);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      h.update(buf.subarray(0, bytesRead));
      if (bytesRead === buf.length) for await (const chunk of fh.createReadStream({ start: bytesRead, autoClose: false })) h.update(chunk as Buffer);
    } finally {
      await fh.close();
    }
    return h.digest('hex');
  }
  for await (const chunk of createReadStream(abs)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * Content digest of matched sources for the cache key: names, types, modes, sizes, link
 * targets and file contents — never mtimes, owners of the context, or absolute paths.
 * `digests` (the context's stat cache) may answer for files whose stat is unchanged.
 * Files are hashed SOURCE_IO at a time; the digest takes them in their order, as before.
 */
export async function digestSources(items: SourceItem[], digests?: FileDigests): Promise<string> {
  const files = items.flatMap((item) => item.entries.filter((e) => e.stat.isFile()));
  // what the stat cache proves is answered at once; only the rest is read and hashed
  await digests?.ready?.();
  const byEntry = new Map<SourceEntry, string>();
  for (const e of files) {
    const hex = digests?.known?.(e.abs, e.stat);
    if (hex !== undefined) byEntry.set(e, hex);
  }
  const missing = files.filter((e) => !byEntry.has(e));
  const content = await mapLimited(missing, SOURCE_IO, (e) => {
    const hash = (): Promise<string> => fileDigest(e.abs, e.stat.size);
    return digests ? digests.digest(e.abs, e.stat, hash) : hash();
  });
  missing.forEach((e, i) => byEntry.set(e, content[i]!));
  const h = batchedHash();
  for (const item of items) {
    h.add(`item ${item.path}\0${item.stat.isDirectory() ? 'dir' : 'file'}\0`);
    for (const e of item.entries) {
      const st = e.stat;
      const type = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? 'f' : 'o';
      h.add(`${e.rel}\0${type}\0${(st.mode & 0o7777).toString(8)}\0`);
      if (type === 'f') h.add(`${st.size}\0${byEntry.get(e)!}\0`);
      if (type === 'l') h.add(`${e.linkTarget ?? ''}\0`);
    }
  }
  return h.hex();
}

/**
 * sha256 of many small strings, handed to the hash ~64 KB at a time: the same bytes as one
 * update per string, without a call into the crypto binding per file (20,000 files: two
 * updates each made it ~13 ms).
 */
function batchedHash(): { add(s: string): void; hex(): string } {
  const h = createHash('sha256');
  let parts: string[] = [];
  let size = 0;
  const flush = (): void => {
    h.update(parts.join(''));
    parts = [];
    size = 0;
  };
  return {
    add(s) {
      parts.push(s);
      size += s.length;
      if (size >= 65_536) flush();
    },
    hex() {
      flush();
      return h.digest('hex');
    },
  };
}

/** A context filter seen from a subdirectory (paths given relative to `pivot`). */
function underPivot(f: PathFilter, pivot: string): PathFilter {
  const mayMatchUnder = f.mayMatchUnder?.bind(f);
  return {
    matches: (rel) => f.matches(`${pivot}/${rel}`),
    ...(mayMatchUnder ? { mayMatchUnder: (dir: string) => mayMatchUnder(`${pivot}/${dir}`) } : {}),
  };
}

/**
 * COPY/ADD sources with `--parents`: each match keeps its path, from the context root or from a
 * `/./` pivot in the source (`src/./a/b` copies `a/b`), below the destination.
 */
export async function collectWithParents(
  root: string,
  patterns: string[],
  opts: { filter?: PathFilter; exclude?: PathFilter } = {},
): Promise<SourceItem[]> {
  const out: SourceItem[] = [];
  for (const p of patterns) {
    const cut = p.indexOf('/./');
    const pivot = cut >= 0 ? cleanRel(p.slice(0, cut)) : '';
    const pattern = cut >= 0 ? p.slice(cut + 3) : p;
    const pivotRoot = await secureJoin(root, pivot);
    const filter = opts.filter && pivot ? underPivot(opts.filter, pivot) : opts.filter;
    const items = await collectSources(pivotRoot, [pattern], { ...(filter ? { filter } : {}), ...(opts.exclude ? { exclude: opts.exclude } : {}) });
    for (const it of items) out.push({ ...it, destRel: it.path });
  }
  return out;
}
