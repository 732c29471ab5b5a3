import { CacheError } from './errors.js';
import type { CacheEntry, CacheMountEntry } from './format.js';

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `168h`, `7d`, `1h30m`, `90s`, `2w` in milliseconds (the units of Go durations, plus d and w). */
export function parseDuration(value: string, what: string): number {
  const v = value.trim();
  const re = /(\d+(?:\.\d+)?)([smhdw])/gy;
  let total = 0;
  let m: RegExpExecArray | null;
  let end = 0;
  while ((m = re.exec(v)) !== null) {
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    end = re.lastIndex;
  }
  if (v === '' || end !== v.length || total <= 0) {
    throw new CacheError('CACHE_SPEC_INVALID', `${what} "${value}" is not a duration: write a positive number with a unit s, m, h, d or w (168h, 7d, 1h30m)`);
  }
  return Math.round(total);
}

/**
 * A timestamp as the format writes it: ISO 8601 UTC with milliseconds (builds seconds apart
 * must still order: max-entries keeps the most recent).
 */
export function stamp(t: Date): string {
  return t.toISOString();
}

/** When a record was last used: `lastUsed`, else (version 2 records) when it was created. */
export function lastUsedMs(r: CacheEntry): number {
  const t = Date.parse(r.lastUsed ?? r.created);
  return Number.isFinite(t) ? t : 0;
}

export interface MergeInput {
  /** The records already at the destination. */
  existing: CacheEntry[];
  /** The records of this build (all used now). */
  fresh: CacheEntry[];
  /** Keys this build took from an imported cache: used now too, wherever they are kept. */
  used: ReadonlySet<string>;
  now: Date;
}

/** The destination's records and this build's, one per key; what this build used is stamped `now`. */
export function mergeRecords(m: MergeInput): CacheEntry[] {
  const now = stamp(m.now);
  const out = new Map<string, CacheEntry>();
  for (const r of m.existing) out.set(r.key, m.used.has(r.key) ? { ...r, lastUsed: now } : { ...r, lastUsed: r.lastUsed ?? r.created });
  for (const r of m.fresh) out.set(r.key, { ...r, lastUsed: now });
  return [...out.values()];
}

export interface Bounds {
  /** Drop records unused for longer than this. */
  ttlMs?: number;
  /** Keep at most this many records, the most recently used. */
  maxEntries?: number;
}

/** Apply `ttl` and `max-entries`: the kept records (most recently used first) and the dropped ones. */
export function boundRecords(records: CacheEntry[], b: Bounds & { now: Date }): { kept: CacheEntry[]; dropped: CacheEntry[] } {
  const order = [...records].sort((x, y) => lastUsedMs(y) - lastUsedMs(x) || (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
  const cutoff = b.ttlMs === undefined ? -Infinity : b.now.getTime() - b.ttlMs;
  const kept: CacheEntry[] = [];
  const dropped: CacheEntry[] = [];
  for (const r of order) {
    const fits = lastUsedMs(r) >= cutoff && (b.maxEntries === undefined || kept.length < b.maxEntries);
    (fits ? kept : dropped).push(r);
  }
  return { kept, dropped };
}

export function isBounded(b: Bounds): boolean {
  return b.ttlMs !== undefined || b.maxEntries !== undefined;
}

/**
 * The destination's cache mounts and this build's, one per mount key: this build's replace
 * the destination's (last writer wins per mount), the others are kept as they were; with a
 * ttl, mounts no export refreshed for that long are dropped.
 */
export function mergeMounts(existing: CacheMountEntry[] | undefined, fresh: CacheMountEntry[] | undefined, b: Bounds & { now: Date }): CacheMountEntry[] {
  const out = new Map<string, CacheMountEntry>();
  for (const m of existing ?? []) out.set(m.key, m);
  for (const m of fresh ?? []) out.set(m.key, m);
  const cutoff = b.ttlMs === undefined ? -Infinity : b.now.getTime() - b.ttlMs;
  return [...out.values()].filter((m) => (Date.parse(m.lastUsed) || 0) >= cutoff);
}
