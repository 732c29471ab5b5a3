/**
 * The overlay probe (a test mount: two process spawns) runs once per store, not on every open
 * (issue 16): its answer is kept in driver.json for one kernel, device and uid. Shown by what
 * open() returns when driver.json says something the probe would not (never by timing).
 */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Snapshotter } from '@hoist/snapshotter';
import { ImageStore } from '@hoist/oci';
import { tmpdir } from './helpers.js';

async function open(dir: string): Promise<Snapshotter> {
  const store = await ImageStore.open(dir);
  return Snapshotter.open({ root: path.join(dir, 'snapshots'), blobs: store.blobs });
}

it('probes once, then trusts driver.json while kernel, device and uid are the same', async () => {
  const dir = await tmpdir('probe-');
  const first = await open(dir);
  const file = path.join(dir, 'snapshots', 'driver.json');
  const saved = JSON.parse(await fsp.readFile(file, 'utf8')) as { key: string; driver: string };
  expect(saved.driver).toBe(first.driver);
  expect(saved.key).toContain(os.release());

  // the other answer, under the same key: open() must take it without probing again
  const other = first.driver === 'overlay' ? 'copy' : 'overlay';
  await fsp.writeFile(file, JSON.stringify({ key: saved.key, driver: other }));
  expect((await open(dir)).driver).toBe(other);

  // another kernel (or device, or uid): probed again, and the real answer written back
  await fsp.writeFile(file, JSON.stringify({ key: `not-this-kernel ${saved.key}`, driver: other }));
  expect((await open(dir)).driver).toBe(first.driver);
  expect(JSON.parse(await fsp.readFile(file, 'utf8'))).toEqual(saved);
  // nothing left in tmp/ by the probe or the write
  expect(await fsp.readdir(path.join(dir, 'snapshots', 'tmp'))).toEqual([]);
});

it('a damaged driver.json means probing again', async () => {
  const dir = await tmpdir('probe-');
  const first = await open(dir);
  const file = path.join(dir, 'snapshots', 'driver.json');
  await fsp.writeFile(file, '{"key":');
  expect((await open(dir)).driver).toBe(first.driver);
  expect(JSON.parse(await fsp.readFile(file, 'utf8'))).toHaveProperty('driver', first.driver);
});
