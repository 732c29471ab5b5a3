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
export async function storeDriver(layout: Layout, xattrs: OverlayXattrs, facts?: Promise<DriverFacts>): Promise<Driver> {
  const file = path.join(layout.root, 'driver.json');
  const { uidMap, dev, known } = await (facts ?? driverFacts(layout));
  const key = `${os.release()} dev=${dev} uid=${process.getuid?.() ?? -1} map=${uidMap} xattrs=${xattrs}`;
  if (known?.key === key && (known.driver === 'overlay' || known.driver === 'copy')) return known.driver;
  const driver: Driver = (await probeOverlay(layout.tmpPath('probe'), xattrs)) ? 'overlay' : 'copy';
  const tmp = layout.tmpPath('driver');
  await fsp.writeFile(tmp, JSON.stringify({ key, driver }) + '\n');
  await fsp.rename(tmp, file);
  return driver;
}

/** What the driver choice depends on, besides the xattr mode, and what driver.json remembers. */
export interface DriverFacts {
  uidMap: string;
  dev: number;
  known: { key?: string; driver?: string } | undefined;
}

/** `rootDev`: the root's device when the caller stats the root anyway. Tiny reads, synchronous (see Layout.madeBefore). */
export async function driverFacts(layout: Layout, rootDev?: Promise<number>): Promise<DriverFacts> {
  // rootless runs as uid 0 of a user namespace: the uid map tells it from real root
  const map = readSmallFile('/proc/self/uid_map') ?? '';
  const known = readKnown(path.join(layout.root, 'driver.json'));
  const dev = await (rootDev ?? fsp.stat(layout.root).then((st) => st.dev));
  return { uidMap: map.trim().split(/\s+/).join(','), dev, known };
}

/** What driver.json says; missing or damaged means nothing is known. */
function readKnown(file: string): { key?: string; driver?: string } | undefined {
  try {
    return JSON.parse(readSmallFile(file) ?? '') as { key?: string; driver?: string };
  } catch {
    return undefined;
  }
}
