import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { probeOverlay, type OverlayXattrs } from './overlay.js';
import type { Driver } from './mounted.js';
import { readSmallFile, type Layout } from './store.js';

/**
 * The driver this store's host can use, probed (a test overlay mount: two process spawns) only
 * the first time and remembered in `driver.json` beside the snapshots, so that a fully cached
 * build does not pay for it (issue 16). The answer holds for one kernel, filesystem, user, user
 * namespace mapping and overlay xattr mode: a change in any of them probes again.
 */
export async function storeDriver(layout: Layout, xattrs: OverlayXattrs, rootDev?: number): Promise<Driver> {
  const file = path.join(layout.root, 'driver.json');
  // rootless runs as uid 0 of a user namespace: the uid map tells it from real root (tiny
  // files, read synchronously: see Layout.madeBefore)
  const uidMap = (readSmallFile('/proc/self/uid_map') ?? '').trim().split(/\s+/).join(',');
  const dev = rootDev ?? (await fsp.stat(layout.root)).dev;
  const key = `${os.release()} dev=${dev} uid=${process.getuid?.() ?? -1} map=${uidMap} xattrs=${xattrs}`;
  const known = readKnown(file);
  if (known?.key === key && (known.driver === 'overlay' || known.driver === 'copy')) return known.driver;
  const driver: Driver = (await probeOverlay(layout.tmpPath('probe'), xattrs)) ? 'overlay' : 'copy';
  const tmp = layout.tmpPath('driver');
  await fsp.writeFile(tmp, JSON.stringify({ key, driver }) + '\n');
  await fsp.rename(tmp, file);
  return driver;
}

/** What driver.json says; missing or damaged means nothing is known. */
function readKnown(file: string): { key?: string; driver?: string } | undefined {
  try {
    return JSON.parse(readSmallFile(file) ?? '') as { key?: string; driver?: string };
  } catch {
    return undefined;
  }
}
