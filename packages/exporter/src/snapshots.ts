import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { SnapshotMaintenance } from '@hoist/snapshotter';
import { pidAlive, pidInName, readdirOrEmpty } from './fs-tools.js';
import type { StorePaths } from './store-paths.js';

/**
 * Signs that another process is using the store right now: its mounts and temp dirs in the
 * snapshot root, its temp blobs, the builder's per-process scratch, a held index lock, mount
 * points under the snapshot root. Each is described for the user.
 */
export async function storeActivity(paths: StorePaths): Promise<string[]> {
  const out: string[] = [];
  const live = (name: string): number | undefined => {
    const pid = pidInName(name);
    return pid !== undefined && pid !== process.pid && pidAlive(pid) ? pid : undefined;
  };
  const snaps = new SnapshotMaintenance(paths.snapshots);
  const what = { mount: 'has a mount (a build or `hoist run`)', tmp: 'is unpacking or committing a layer' } as const;
  for (const w of await snaps.work()) {
    const pid = live(w.name);
    if (pid !== undefined) out.push(`process ${pid} ${what[w.kind]} (${w.dir})`);
  }
  for (const [dir, doing] of [
    [path.join(paths.oci, 'tmp'), 'is writing a blob'],
    [paths.tmp, 'is building or running'],
  ] as const) {
    for (const name of await readdirOrEmpty(dir)) {
      const pid = live(name);
      if (pid !== undefined) out.push(`process ${pid} ${doing} (${path.join(dir, name)})`);
    }
  }
  const lock = await fsp.readFile(path.join(paths.oci, 'index.json.lock'), 'utf8').catch(() => undefined);
  const owner = lock !== undefined ? Number.parseInt(lock, 10) : NaN;
  if (Number.isSafeInteger(owner) && owner > 0 && owner !== process.pid && pidAlive(owner)) out.push(`process ${owner} is tagging images (index.json.lock)`);
  // live owners are listed above; a dead owner's mount is stale (the snapshotter's cleanup unmounts it)
  for (const m of await snaps.mountPoints()) if (pidInName(m.name) === undefined) out.push(`${m.path} is mounted`);
  return [...new Set(out)];
}
