import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { isDigest, type Digest } from './digest.js';
import { readdirOrEmpty } from './fsutil.js';
import type { Descriptor } from './types.js';

/**
 * A build cache record: what a step's cache key maps to. The one definition of the format:
 * the builder writes it (`cache/keys/<2 hex>/<key>.json`, see {@link cacheRecordFile}), the
 * store tools read it ({@link listCacheRecords}), exported caches carry it (with `lastUsed`).
 */
export interface CacheRecord {
  /** The cache key (hex sha256): machine-independent by construction. */
  key: string;
  /** The layer the step produced; none when it changed nothing. */
  layer?: { descriptor: Descriptor; diffId: Digest };
  /** When the step first ran (RFC 3339): reused so that cached rebuilds are byte-identical. */
  created: string;
  /** A digest per input of the key (never a value), to explain a later miss (`--explain-cache`). */
  inputDigests?: Record<string, string>;
  /** The parent key, so that an imported cache can explain a miss too. */
  parent?: string;
}

/** Where the record of `key` lives under the cache key directory. */
export function cacheRecordFile(dir: string, key: string): string {
  return path.join(dir, key.slice(0, 2), `${key}.json`);
}

export interface CacheRecordFile {
  file: string;
  size: number;
  mtimeMs: number;
  /** Absent when the file is not a valid record (`error` says why). */
  record?: CacheRecord;
  error?: string;
}

function validate(v: unknown, key: string): string | undefined {
  const r = v as CacheRecord;
  if (typeof r !== 'object' || r === null) return 'not a JSON object';
  if (r.key !== key) return `its key ${String(r.key)} does not match its file name`;
  if (typeof r.created !== 'string') return 'no created time';
  if (r.layer !== undefined) {
    const d = r.layer?.descriptor;
    if (!d || typeof d.digest !== 'string' || !isDigest(d.digest) || typeof d.size !== 'number' || typeof r.layer.diffId !== 'string' || !isDigest(r.layer.diffId)) {
      return 'a malformed layer';
    }
  }
  return undefined;
}

/** Every file under the cache key directory, parsed and checked (torn or foreign files come back with `error`). */
export async function listCacheRecords(dir: string): Promise<CacheRecordFile[]> {
  const out: CacheRecordFile[] = [];
  for (const shard of (await readdirOrEmpty(dir)).sort()) {
    const sdir = path.join(dir, shard);
    for (const name of (await readdirOrEmpty(sdir)).sort()) {
      const file = path.join(sdir, name);
      const st = await fsp.lstat(file).catch(() => undefined);
      if (!st?.isFile()) continue;
      if (name.startsWith('.tmp-')) continue; // an atomic write in progress (or a leftover: see temp files)
      const entry: CacheRecordFile = { file, size: st.size, mtimeMs: st.mtimeMs };
      const key = name.endsWith('.json') ? name.slice(0, -5) : name;
      try {
        const v = JSON.parse(await fsp.readFile(file, 'utf8')) as unknown;
        const err = validate(v, key);
        if (err) entry.error = err;
        else entry.record = v as CacheRecord;
      } catch {
        entry.error = 'not valid JSON (a torn write?)';
      }
      out.push(entry);
    }
  }
  return out;
}
