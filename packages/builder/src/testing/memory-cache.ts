import type { CacheRecord, CacheStore } from '../cache.js';

/** A CacheStore in memory that counts lookups and writes, for solver tests. */
export class MemoryCacheStore implements CacheStore {
  readonly records = new Map<string, CacheRecord>();
  /** Keys looked up, in order (hits and misses). */
  readonly lookups: string[] = [];
  /** Keys written, in order. */
  readonly writes: string[] = [];
  private readonly kids = new Map<string, Array<{ key: string; op: string; created: string }>>();

  async get(key: string): Promise<CacheRecord | undefined> {
    this.lookups.push(key);
    return this.records.get(key);
  }

  async put(rec: CacheRecord): Promise<void> {
    this.writes.push(rec.key);
    this.records.set(rec.key, rec);
  }

  async addChild(parent: string, rec: CacheRecord): Promise<void> {
    const list = (this.kids.get(parent) ?? []).filter((c) => c.key !== rec.key);
    this.kids.set(parent, [{ key: rec.key, op: rec.inputDigests?.op ?? '', created: rec.created }, ...list]);
  }

  async children(parent: string): Promise<Array<{ key: string; op: string; created: string }>> {
    return this.kids.get(parent) ?? [];
  }

  /** Forget the counters (not the records), between builds of one test. */
  resetCounts(): void {
    this.lookups.length = 0;
    this.writes.length = 0;
  }
}
