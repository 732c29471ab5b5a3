import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { probeOverlay } from './overlay.js';
import type { Driver } from './mounted.js';
import type { Layout } from './store.js';

/**
 * The driver this store's host can use, probed (a test overlay mount: two process spawns) only
 * the first time and remembered in `driver.json` beside the snapshots, so that a fully cached
 * build does not pay for it (issue 16). The answer holds for one kernel, filesystem and user:
 * a new kernel release, a store moved to another device or another uid probes again.
 */
export async function storeDriver(layout: Layout): Promise<Driver> {
  const file = path.join(layout.root, 'driver.json');
  const key = `${os.release()} dev=${(await fsp.stat(layout.root)).dev} uid=${process.getuid?.() ?? -1}`;
  const known = await readKnown(file);
  if (known?.key === key && (known.driver === 'overlay' || known.driver === 'copy')) return known.driver;
  const driver: Driver = (await probeOverlay(layout.tmpPath('probe'))) ? 'overlay' : 'copy';
  const tmp = layout.tmpPath('driver');
  await fsp.writeFile(tmp, JSON.stringify({ key, driver }) + '\n');
  await fsp.rename(tmp, file);
  return driver;
}

/** What driver.json says; missing or damaged means nothing is known. */
async function readKnown(file: string): Promise<{ key?: string; driver?: string } | undefined> {
  try {
    return JSON.parse(await fsp.readFile(file, 'utf8')) as { key?: string; driver?: string };
  } catch {
    return undefined;
  }
}
