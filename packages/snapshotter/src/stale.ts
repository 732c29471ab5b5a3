import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { mountsUnder, unmount } from './overlay.js';
import { Layout, listNames, pidOf } from './store.js';

export interface StaleCleanup {
  unmounted: number;
  removed: number;
}

/**
 * Unmount and remove the mounts (`<root>/mounts/<pid>-…`) and work dirs (`<root>/tmp/…-<pid>-…`)
 * of the processes for which `gone(pid)` holds. Anything else is never touched.
 */
export async function cleanupStaleWork(snapshotsRoot: string, gone: (pid: number) => boolean): Promise<StaleCleanup> {
  const layout = new Layout(snapshotsRoot);
  const done: StaleCleanup = { unmounted: 0, removed: 0 };
  // listed synchronously (see Layout.madeBefore): nearly always there is no stale work
  for (const parent of [layout.mounts, layout.tmp]) {
    for (const name of listNames(parent)) {
      const pid = pidOf(name);
      if (pid === undefined || !gone(pid)) continue;
      const dir = path.join(parent, name);
      for (const mp of await mountsUnder(dir)) {
        await unmount(mp);
        done.unmounted++;
      }
      await fsp.rm(dir, { recursive: true, force: true });
      done.removed++;
    }
  }
  return done;
}
