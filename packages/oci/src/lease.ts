import { closeSync, mkdirSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import { OciError } from './errors.js';
import { pidAlive } from './fsutil.js';
import { storePaths } from './store-paths.js';

export interface StoreLease {
  release(): void;
}

function livePids(dir: string, prefix: string): number[] {
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const n of names) {
    if (!n.startsWith(prefix)) continue;
    const pid = Number(n.slice(prefix.length));
    if (!Number.isSafeInteger(pid) || pid === process.pid) continue;
    if (pidAlive(pid)) out.push(pid);
    else rmSync(path.join(dir, n), { force: true }); // left by a killed process
  }
  return out;
}

/**
 * Who is using a store. Every hoist process that reads or writes the store holds a shared lease
 * (`<root>/active/shared-<pid>`); `hoist prune` holds the exclusive one. Each side writes its
 * own marker first and then looks for the other, so of two racing processes at least one sees
 * the other and backs off: prune never deletes blobs a build is about to tag.
 */
export function acquireStoreLease(root: string, mode: 'shared' | 'exclusive'): StoreLease {
  const dir = storePaths(root).leases;
  mkdirSync(dir, { recursive: true });
  const mine = path.join(dir, `${mode}-${process.pid}`);
  const fd = openSync(mine, 'w');
  writeSync(fd, `${process.pid}\n`);
  closeSync(fd);
  const release = (): void => rmSync(mine, { force: true });
  const others = livePids(dir, mode === 'shared' ? 'exclusive-' : 'shared-');
  const rivals = mode === 'exclusive' ? [...others, ...livePids(dir, 'exclusive-')] : others;
  if (rivals.length > 0) {
    release();
    throw new OciError(
      'STORE_LOCKED',
      mode === 'shared'
        ? `the store ${root} is being pruned by process ${rivals.join(', ')}; run again when it has finished`
        : `the store ${root} is in use by process ${rivals.join(', ')}; run hoist prune when no build, pull or run is using it`,
    );
  }
  return { release };
}
