/**
 * Bounded caches: records carry their last use, an export merges with what is at the
 * destination and drops records by ttl / max-entries, and a local cache directory loses the
 * blobs only the replaced artifact used. Clocks are passed in (`now`), never read.
 */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ImageStore, MediaType, sha256 } from '@hoist/oci';
import { boundRecords, exportCacheToDir, localCacheUsage, mergeRecords, parseCacheSpec, parseDuration, pruneLocalCache, readLocalCache, type CacheEntry } from '@hoist/cache';

const H = 3_600_000;
const at = (h: number): Date => new Date(Date.UTC(2026, 0, 1) + h * H);
const rec = (k: string, lastUsedHour?: number): CacheEntry => ({
  key: k.repeat(64),
  created: '2026-01-01T00:00:00Z',
  ...(lastUsedHour !== undefined ? { lastUsed: at(lastUsedHour).toISOString() } : {}),
});

describe('durations and bounds in --cache-to', () => {
  it.each([
    ['168h', 168 * H],
    ['7d', 168 * H],
    ['1h30m', 1.5 * H],
    ['90s', 90_000],
    ['2w', 336 * H],
  ])('%s is %d ms', (text, ms) => expect(parseDuration(text, 'ttl')).toBe(ms));

  it.each(['', '7', 'd', '0s', '7 days', '-1h', '1h-'])('rejects "%s" naming the units', (text) => {
    expect(() => parseDuration(text, '--cache-to ttl')).toThrow(/--cache-to ttl ".*" is not a duration: write a positive number with a unit s, m, h, d or w/);
  });

  it('ttl and max-entries belong to --cache-to', () => {
    expect(parseCacheSpec('type=registry,ref=r.example/a:c,mode=max,ttl=7d,max-entries=50', 'to')).toEqual({ type: 'registry', ref: 'r.example/a:c', mode: 'max', ttlMs: 168 * H, maxEntries: 50 });
    expect(() => parseCacheSpec('type=registry,ref=r.example/a:c,ttl=7d', 'from')).toThrow(/--cache-from does not take ttl=.*--cache-to/);
    expect(() => parseCacheSpec('type=local,dest=/x,max-entries=0', 'to')).toThrow(/max-entries must be a whole number of records, at least 1, not "0"/);
    expect(() => parseCacheSpec('type=local,dest=/x,max-entries=ten', 'to')).toThrow(/not "ten"/);
  });
});

describe('merge and bound', () => {
  it('stamps what this build used (its own records and the imported ones it hit) with now', () => {
    const existing = [rec('a', 1), rec('b', 2), rec('c')];
    const merged = mergeRecords({ existing, fresh: [{ ...rec('d'), lastUsed: 'stale' }], used: new Set(['b'.repeat(64)]), now: at(10) });
    const byKey = Object.fromEntries(merged.map((r) => [r.key[0], r.lastUsed]));
    expect(byKey).toEqual({ a: '2026-01-01T01:00:00.000Z', b: '2026-01-01T10:00:00.000Z', c: '2026-01-01T00:00:00Z', d: '2026-01-01T10:00:00.000Z' });
  });

  it('ttl drops records unused for longer; max-entries keeps the most recently used', () => {
    const records = [rec('a', 0), rec('b', 5), rec('c', 9), rec('d', 10), rec('e')];
    const ttl = boundRecords(records, { now: at(10), ttlMs: 6 * H });
    expect(ttl.kept.map((r) => r.key[0])).toEqual(['d', 'c', 'b']);
    expect(ttl.dropped.map((r) => r.key[0]).sort()).toEqual(['a', 'e']);
    const max = boundRecords(records, { now: at(10), maxEntries: 2 });
    expect(max.kept.map((r) => r.key[0])).toEqual(['d', 'c']);
    const both = boundRecords(records, { now: at(10), ttlMs: 20 * H, maxEntries: 4 });
    expect(both.kept.map((r) => r.key[0])).toEqual(['d', 'c', 'b', 'a']);
    expect(boundRecords(records, { now: at(10) }).dropped).toEqual([]);
  });
});

describe('local cache directory, bounded', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hoist-cache-bound-'));
  });
  afterAll(async () => fsp.rm(dir, { recursive: true, force: true }));

  async function layerRecord(store: ImageStore, name: string): Promise<CacheEntry> {
    const layer = await store.blobs.putBytes(Buffer.from(`layer ${name}`), MediaType.OciLayerGzip);
    return { key: sha256(name).slice(7), created: '2026-01-01T00:00:00Z', layer: { descriptor: layer, diffId: sha256(`u ${name}`) } };
  }
  const blobCount = async (d: string): Promise<number> => (await fsp.readdir(path.join(d, 'blobs', 'sha256'))).length;

  it('exports merge with the directory; max-entries keeps N and deletes the blobs only dropped records used', async () => {
    const store = await ImageStore.open(path.join(dir, 'store'));
    const out = path.join(dir, 'cache');
    const recs: CacheEntry[] = [];
    for (let build = 0; build < 6; build++) {
      recs.push(await layerRecord(store, `step-${build}`));
      // each build: one shared record (always used) and one of its own
      const shared = await layerRecord(store, 'shared');
      const r = await exportCacheToDir(store, { records: [shared, recs[build]!], dir: out, mode: 'max', maxEntries: 3, now: at(build) });
      expect(r.records).toBe(Math.min(3, build + 2));
      // 3 layers at most, plus this artifact's config and manifest
      expect(await blobCount(out)).toBe(Math.min(3, build + 2) + 2);
    }
    const found = await readLocalCache(out);
    const keys = found!.config.records.map((r) => r.key).sort();
    expect(keys).toEqual([sha256('shared'), sha256('step-4'), sha256('step-5')].map((d) => d.slice(7)).sort());
    expect(found!.config.version).toBe(4);
    expect(found!.config.records.find((r) => r.key === sha256('step-4').slice(7))?.lastUsed).toBe('2026-01-01T04:00:00.000Z');
  });

  it('an unbounded export keeps everything; prune --older-than drops by last use and removes every stray blob', async () => {
    const store = await ImageStore.open(path.join(dir, 'store2'));
    const out = path.join(dir, 'cache2');
    for (let build = 0; build < 4; build++) await exportCacheToDir(store, { records: [await layerRecord(store, `s${build}`)], dir: out, mode: 'max', now: at(build) });
    const before = await localCacheUsage(out);
    expect(before.records).toBe(4);
    // the 3 earlier artifacts' configs and manifests are strays
    expect(before.orphans.count).toBe(6);
    expect(before.oldestUse).toBe(at(0).toISOString());
    const r = await pruneLocalCache(store, { dir: out, ttlMs: 1.5 * H, now: at(3) });
    expect([r.records, r.dropped]).toEqual([2, 2]);
    // 2 dropped layers + 6 strays + the replaced config and manifest
    expect(r.deleted).toBe(10);
    const after = await localCacheUsage(out);
    expect(after.orphans).toEqual({ count: 0, bytes: 0 });
    expect(await blobCount(out)).toBe(4);
  });
});
