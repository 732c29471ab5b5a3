import type { CacheRecordFile } from '@hoist/oci';

/** The record type and its listing are defined once, in @hoist/oci (cache-record.ts). */
export { listCacheRecords, type CacheRecord, type CacheRecordFile } from '@hoist/oci';

/** Oldest first by `created`, then by file time, then by key (a stable order for --keep-storage). */
export function byAge(a: CacheRecordFile, b: CacheRecordFile): number {
  const ta = Date.parse(a.record?.created ?? '') || 0;
  const tb = Date.parse(b.record?.created ?? '') || 0;
  return ta - tb || a.mtimeMs - b.mtimeMs || a.file.localeCompare(b.file);
}
