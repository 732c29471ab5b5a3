import * as os from 'node:os';
import * as path from 'node:path';
import { acquireStoreLease, ensurePrivateDir, ImageStore, storePaths } from '@hoist/oci';
import { reclaimStore, type ReclaimReport } from '@hoist/builder/reclaim';
import { Snapshotter } from '@hoist/snapshotter';
import { loadConfig } from './config.js';
import { UsageError } from './errors.js';

/** The store root: `--root`, else `$HOIST_ROOT`, else `root` in hoist.json / the user config, else `$XDG_DATA_HOME/hoist`, else `~/.local/share/hoist`. */
export function storeRoot(flag?: string): string {
  if (flag) return path.resolve(flag);
  if (process.env.HOIST_ROOT) return path.resolve(process.env.HOIST_ROOT);
  const configured = loadConfig().root;
  if (configured) return configured;
  const xdg = process.env.XDG_DATA_HOME;
  return path.join(xdg ? path.resolve(xdg) : path.join(os.homedir(), '.local', 'share'), 'hoist');
}

export interface OpenedStore {
  root: string;
  store: ImageStore;
  snapshotter(): Promise<Snapshotter>;
}

/**
 * The image store lives in `<root>/oci` (an OCI layout skopeo and umoci read); snapshots and cache
 * beside it. The root is made private (0700) first, also when an older hoist made it 0755.
 */
export async function openStore(rootFlag?: string): Promise<OpenedStore> {
  const root = storeRoot(rootFlag);
  await ensurePrivateDir(root);
  holdLease(root, 'shared');
  const paths = storePaths(root);
  // independent: the reclaim removes only dead processes' temp files; the lease keeps prune away
  const [, store] = await Promise.all([reclaimLeftovers(root), ImageStore.open(paths.oci, { leased: true })]);
  let snaps: Promise<Snapshotter> | undefined;
  return {
    root,
    store,
    snapshotter: () => (snaps ??= Snapshotter.open({ root: paths.snapshots, blobs: store.blobs, ...snapshotDriver() })),
  };
}

/** `$HOIST_SNAPSHOTTER=overlay|copy` picks the snapshot driver; default: overlay where a test mount works. */
function snapshotDriver(): { driver?: 'overlay' | 'copy' } {
  const d = process.env.HOIST_SNAPSHOTTER;
  if (d === undefined || d === '') return {};
  if (d !== 'overlay' && d !== 'copy') throw new UsageError(`HOIST_SNAPSHOTTER must be overlay or copy, not "${d}"`);
  return { driver: d };
}

const held = new Set<string>();

/** Mark this process as a user of the store until it exits (see acquireStoreLease). */
export function holdLease(root: string, mode: 'shared' | 'exclusive'): void {
  const key = `${mode}:${root}`;
  if (held.has(key)) return;
  const lease = acquireStoreLease(root, mode);
  held.add(key);
  process.once('exit', () => lease.release());
}

/**
 * Reclaim what killed hoist processes left in the store and on the host (containers still
 * running, cgroups, bundles, secrets, mounts, temp files), never a live process's work. A
 * failure here never fails the command: it is reported and the next start tries again.
 */
export async function reclaimLeftovers(root: string): Promise<ReclaimReport | undefined> {
  try {
    return await reclaimStore(root);
  } catch (e) {
    process.stderr.write(`hoist: warning: could not reclaim what a crashed hoist process left in ${root}: ${(e as Error).message}\n`);
    return undefined;
  }
}

/** One line about a reclaim, or '' when there was nothing to reclaim. */
export function reclaimSummary(r: ReclaimReport | undefined): string {
  if (!r || r.pids.length === 0) return '';
  const parts = [`${r.containers} container(s)`, `${r.cgroups} cgroup(s)`, `${r.unmounted} mount(s)`, `${r.paths} file(s) and dir(s)`];
  return `reclaimed what crashed process(es) ${r.pids.join(', ')} left: ${parts.join(', ')}\n`;
}
