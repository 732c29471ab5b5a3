import { createHash } from 'node:crypto';
import { promises as fsp, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { cacheRecordFile, writeFileAtomic, type CacheRecord } from '@hoist/oci';
import { readIndex, rememberChild, type ParentIndex } from './cache-index.js';

/** What a cache key maps to; the format is defined once, in @hoist/oci. */
export type { CacheRecord } from '@hoist/oci';

/**
 * The cache key of a step: its parent's key and its own normalised inputs, hashed. v2: the
 * build args a RUN sees are an input of their own (`buildArgs`), apart from the image's `env`.
 */
export function cacheKey(parent: string, inputs: Record<string, unknown>): string {
  return createHash('sha256').update(JSON.stringify({ v: 2, parent, inputs })).digest('hex');
}

/**
 * Where the solver keeps cache records: the seam between it and the store (an in-memory fake
 * is under `testing/`). `children` and `addChild` keep, per parent key, the records made on
 * top of it, to explain a later miss (`--explain-cache`); a store may leave them out.
 */
export interface CacheStore {
  get(key: string): Promise<CacheRecord | undefined>;
  put(rec: CacheRecord): Promise<void>;
  addChild?(parent: string, rec: CacheRecord): Promise<void>;
  children?(parent: string): Promise<ParentIndex['children']>;
}

/** Cache records on disk, one small JSON file per key, written atomically. */
export class FileCacheStore implements CacheStore {
  constructor(readonly dir: string) {}

  async addChild(parent: string, rec: CacheRecord): Promise<void> {
    await rememberChild(this.dir, parent, rec);
  }

  async children(parent: string): Promise<ParentIndex['children']> {
    return (await readIndex(this.dir, parent)).children;
  }

  private file(key: string): string {
    return cacheRecordFile(this.dir, key);
  }

  /**
   * Synchronous on purpose (issue 16): a cached build looks its steps up one after the other
   * (each key needs the one before), a record of a few hundred bytes each. Measured in a fresh
   * process, twelve lookups (record read, layer blob stat) took 0.4-1.3 ms this way against
   * 1.4-2.4 ms awaited: the cost is each call's promise and thread-pool round trip.
   */
  async get(key: string): Promise<CacheRecord | undefined> {
    try {
      const rec = JSON.parse(readFileSync(this.file(key), 'utf8')) as CacheRecord;
      return rec.key === key ? rec : undefined;
    } catch {
      return undefined;
    }
  }

  async put(rec: CacheRecord): Promise<void> {
    // a cache whose reader validates (get: a torn or empty file is a miss, a lost one is rebuilt);
    // what it points at (the layer blob) was fsynced before it was written: no fsync of its own
    await writeFileAtomic(this.file(rec.key), JSON.stringify(rec), { sync: false });
  }

  async *all(): AsyncGenerator<CacheRecord> {
    let shards: string[] = [];
    try {
      shards = await fsp.readdir(this.dir);
    } catch {
      return;
    }
    for (const s of shards) {
      for (const f of await fsp.readdir(path.join(this.dir, s)).catch(() => [] as string[])) {
        try {
          yield JSON.parse(await fsp.readFile(path.join(this.dir, s, f), 'utf8')) as CacheRecord;
        } catch {
          // a torn file is not a record
        }
      }
    }
  }

  async delete(key: string): Promise<void> {
    await fsp.rm(this.file(key), { force: true });
  }
}
