import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '@hoist/oci';

/** Children of a parent key, kept to explain misses: (parent key) -> [(key, op)]. */
export interface ParentIndex {
  children: Array<{ key: string; op: string; created: string }>;
}

const MAX_CHILDREN = 32;

function indexFile(dir: string, parent: string): string {
  return path.join(path.dirname(dir), 'parents', parent.slice(0, 2), `${parent}.json`);
}

export async function readIndex(dir: string, parent: string): Promise<ParentIndex> {
  try {
    return JSON.parse(await fsp.readFile(indexFile(dir, parent), 'utf8')) as ParentIndex;
  } catch {
    return { children: [] };
  }
}

/** Note a new record under its parent key (newest first, bounded), for later explanations. */
export async function rememberChild(dir: string, parent: string, rec: { key: string; created: string; inputDigests?: Record<string, string> }): Promise<void> {
  const idx = await readIndex(dir, parent);
  const op = rec.inputDigests?.op ?? '';
  idx.children = [{ key: rec.key, op, created: rec.created }, ...idx.children.filter((c) => c.key !== rec.key)].slice(0, MAX_CHILDREN);
  // only for explanations (a torn index reads as empty): no fsync
  await writeFileAtomic(indexFile(dir, parent), JSON.stringify(idx), { sync: false });
}
