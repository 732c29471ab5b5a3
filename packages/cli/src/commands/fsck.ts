import { formatSize, fsckStore, storePaths } from '@hoist/exporter';
import { reclaimLeftovers, reclaimSummary, storeRoot } from '../store.js';
import { exportErrors } from './outputs.js';

/** `hoist fsck`: check the store; exit 0 when consistent, 1 otherwise. */
export async function fsckCommand(f: { json?: boolean; root?: string }, signal: AbortSignal): Promise<number> {
  const paths = storePaths(storeRoot(f.root));
  const reclaimed = await reclaimLeftovers(paths.root);
  return exportErrors(async () => {
    const r = await fsckStore(paths, { signal });
    if (f.json) {
      process.stdout.write(JSON.stringify(reclaimed && reclaimed.pids.length > 0 ? { ...r, reclaimed } : r, null, 2) + '\n');
      return r.ok ? 0 : 1;
    }
    const out: string[] = [];
    const note = reclaimSummary(reclaimed);
    if (note) out.push(note.trimEnd());
    out.push(`checked ${paths.root}: ${r.images} image name(s), ${r.blobsVerified} blob(s) verified (${formatSize(r.bytesVerified)}), ${r.cacheRecords} build cache record(s)`);
    if (r.absentPlatforms > 0) out.push(`${r.absentPlatforms} platform manifest(s) of multi-platform images were never pulled (fine)`);
    for (const i of r.issues) out.push(`${i.severity === 'error' ? 'ERROR' : 'warning'}: ${i.problem}\n  fix: ${i.fix}`);
    if (r.unreferenced.count > 0) out.push(`${r.unreferenced.count} unreferenced blob(s) (${formatSize(r.unreferenced.bytes)}): \`hoist prune\` reclaims them`);
    const errors = r.issues.filter((i) => i.severity === 'error').length;
    out.push(r.ok ? 'the store is consistent' : `the store has ${errors} problem(s)`);
    process.stdout.write(out.join('\n') + '\n');
    return r.ok ? 0 : 1;
  });
}
