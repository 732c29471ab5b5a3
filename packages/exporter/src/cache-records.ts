import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { isDigest, type Descriptor, type Digest } from '@hoist/oci';
import { readdirOrEmpty } from './fs-tools.js';

/** A build cache record as the builder writes it (`cache/keys/<2 hex>/<key>.json`). */
export interface CacheRecordData {
  key: string;
  layer?: { descriptor: Descriptor; diffId: Digest };
  created: string;
  inputDigests?: Record<string, string>;
}

export interface CacheRecordFile {
  file: string;
  size: number;
  mtimeMs: number;
  /** Absent when the file is not a valid record (`error` says why). */
  record?: CacheRecordData;
  error?: string;
}

function validate(v: unknown, key: string): string | undefined {
  const r = v as CacheRecordData;
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
        else entry.record = v as CacheRecordData;
      } catch {
        entry.error = 'not valid JSON (a torn write?)';
      }
      out.push(entry);
    }
  }
  return out;
}

/** Oldest first by `created`, then by file time, then by key (a stable order for --keep-storage). */
export function byAge(a: CacheRecordFile, b: CacheRecordFile): number {
  const ta = Date.parse(a.record?.created ?? '') || 0;
  const tb = Date.parse(b.record?.created ?? '') || 0;
  return ta - tb || a.mtimeMs - b.mtimeMs || a.file.localeCompare(b.file);
}
