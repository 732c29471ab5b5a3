import * as readline from 'node:readline';
import { formatSize, parseSize, pruneStore, storePaths, type PruneReport } from '@hoist/exporter';
import { UsageError } from '../errors.js';
import { holdLease, reclaimLeftovers, reclaimSummary, storeRoot } from '../store.js';
import { exportErrors } from './outputs.js';

export interface PruneFlags {
  all?: boolean;
  keepStorage?: string;
  force?: boolean;
  dryRun?: boolean;
  json?: boolean;
  root?: string;
}

async function confirm(question: string): Promise<boolean> {
  process.stderr.write(question);
  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  const tty = !!process.stdin.isTTY;
  try {
    for await (const line of rl) {
      if (!tty) process.stderr.write(`${line}\n`); // echo what came through the pipe
      return /^y(es)?$/i.test(line.trim());
    }
    if (!tty) process.stderr.write('\n');
    return false;
  } finally {
    rl.close();
  }
}

function summary(r: PruneReport): string {
  const lines: string[] = [];
  const row = (what: string, n: number, bytes?: number): void => {
    if (n > 0) lines.push(`${r.dryRun ? 'Would delete' : 'Deleted'} ${what}: ${n}${bytes !== undefined ? ` (${formatSize(bytes)})` : ''}`);
  };
  row('build cache records', r.cacheRecords.removed);
  row('blobs', r.blobs.count, r.blobs.bytes);
  row('snapshots', r.snapshots.count, r.snapshots.bytes);
  row('flattened layer trees', r.chains.count, r.chains.bytes);
  row('temp files', r.temp.count, r.temp.bytes);
  row('cache mounts', r.cacheMounts.count, r.cacheMounts.bytes);
  row('stale mounts and work dirs', r.staleMounts.removed);
  if (r.links > 0) lines.push(`Removed dangling snapshot links: ${r.links}`);
  lines.push(`Kept: ${r.blobs.kept} blobs, ${r.snapshots.kept} snapshots, ${r.cacheRecords.kept} build cache records`);
  if (r.storage !== undefined) lines.push(`Store size (blobs + snapshots): ${formatSize(r.storage)}`);
  for (const n of r.notes) lines.push(`note: ${n}`);
  lines.push(`Total ${r.dryRun ? 'reclaimable' : 'reclaimed'} space: ${formatSize(r.reclaimed)}`);
  return lines.join('\n') + '\n';
}

/** `hoist prune`: delete what no tagged image and no kept build cache record uses. */
export async function pruneCommand(f: PruneFlags, signal: AbortSignal): Promise<number> {
  let keepStorage: number | undefined;
  if (f.keepStorage !== undefined) {
    try {
      keepStorage = parseSize(f.keepStorage);
    } catch (e) {
      throw new UsageError(`--keep-storage: ${(e as Error).message}`);
    }
  }
  if (f.all && keepStorage !== undefined) throw new UsageError('--all drops every build cache record; --keep-storage keeps some: give one of them');
  const paths = storePaths(storeRoot(f.root));
  if (!f.force && !f.dryRun) {
    const what = f.all
      ? 'every blob and snapshot no tagged image uses, ALL build cache records and cache mounts'
      : 'every blob and snapshot no tagged image or build cache record uses' + (keepStorage !== undefined ? `, and the oldest build cache records until the store is under ${formatSize(keepStorage)}` : '');
    if (!(await confirm(`WARNING! This will remove ${what} from ${paths.root}.\nAre you sure you want to continue? [y/N] `))) {
      process.stderr.write('Aborted (use -f to skip this question).\n');
      return 1;
    }
  }
  if (!f.dryRun) holdLease(paths.root, 'exclusive');
  const reclaimed = f.dryRun ? undefined : await reclaimLeftovers(paths.root);
  return exportErrors(async () => {
    const r = await pruneStore(paths, { all: !!f.all, dryRun: !!f.dryRun, signal, ...(keepStorage !== undefined ? { keepStorage } : {}) });
    process.stdout.write(f.json ? JSON.stringify(r, null, 2) + '\n' : reclaimSummary(reclaimed) + summary(r));
    return 0;
  });
}
