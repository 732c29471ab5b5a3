import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { pidAlive, pidInName, readdirOrEmpty, treeSize } from './fs-tools.js';
import type { StorePaths } from './store-paths.js';

export const TEMP_MAX_AGE_MS = 60 * 60 * 1000;

export interface TempEntry {
  path: string;
  ageMs: number;
  size: number;
}

/**
 * Temp leftovers of the store: `oci/tmp/*` (blobs being written), `.tmp-*` files of atomic
 * writes beside `index.json`, `oci-layout` and the cache records, and the builder's scratch
 * space `tmp/*` except what a live process owns (its name carries the pid; names without one
 * come from older versions).
 */
export async function listTempFiles(paths: StorePaths, now = Date.now()): Promise<TempEntry[]> {
  const out: TempEntry[] = [];
  const add = async (p: string): Promise<void> => {
    const st = await fsp.lstat(p).catch(() => undefined);
    if (!st) return;
    out.push({ path: p, ageMs: now - st.mtimeMs, size: st.isDirectory() ? await treeSize(p) : st.size });
  };
  const tmp = path.join(paths.oci, 'tmp');
  for (const n of await readdirOrEmpty(tmp)) await add(path.join(tmp, n));
  for (const n of await readdirOrEmpty(paths.oci)) if (n.startsWith('.tmp-')) await add(path.join(paths.oci, n));
  for (const n of await readdirOrEmpty(paths.tmp)) {
    const pid = pidInName(n);
    if (pid === undefined || (pid !== process.pid && !pidAlive(pid))) await add(path.join(paths.tmp, n));
  }
  for (const shard of await readdirOrEmpty(paths.cacheKeys)) {
    const dir = path.join(paths.cacheKeys, shard);
    for (const n of await readdirOrEmpty(dir)) if (n.startsWith('.tmp-')) await add(path.join(dir, n));
  }
  return out;
}
