/**
 * Snapshotter.open on a store made before (issue 16: every build opens it): nothing is made or
 * written again, the driver probed once is reused; what is missing is still made, and what a
 * dead process left is still removed. Counted as fs calls (never timed).
 */
import { jest } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Snapshotter } from '@hoist/snapshotter';
import { openStore } from './helpers.js';

afterEach(() => jest.restoreAllMocks());

const WRITES = ['mkdir', 'open', 'rename', 'writeFile', 'rm', 'chmod', 'symlink'] as const;

async function writesDuring(fn: () => Promise<unknown>): Promise<Record<string, number>> {
  const spies = WRITES.map((n) => [n, jest.spyOn(fsp, n)] as const);
  try {
    await fn();
    return Object.fromEntries(spies.map(([n, s]) => [n, s.mock.calls.length]));
  } finally {
    for (const [, s] of spies) s.mockRestore();
  }
}

test('reopening a store makes and writes nothing, and finds the same driver', async () => {
  const { snaps } = await openStore();
  const driverFile = path.join(snaps.root, 'driver.json');
  const before = await fsp.stat(driverFile);
  let again: Snapshotter | undefined;
  const calls = await writesDuring(async () => {
    again = await Snapshotter.open({ root: snaps.root, blobs: snaps.blobs });
  });
  expect(calls).toEqual(Object.fromEntries(WRITES.map((n) => [n, 0])));
  expect([again!.driver, again!.overlayXattrs]).toEqual([snaps.driver, snaps.overlayXattrs]);
  expect((await fsp.stat(driverFile)).mtimeMs).toBe(before.mtimeMs);
});

test('what is missing is made again; an open root is made private; a dead process\'s work is removed', async () => {
  const { snaps } = await openStore();
  await fsp.rm(path.join(snaps.root, 'chains'), { recursive: true });
  await fsp.rmdir(path.join(snaps.root, 'empty'));
  await fsp.chmod(snaps.root, 0o755);
  const dead = spawnSync('true').pid!;
  const staleMount = path.join(snaps.root, 'mounts', `${dead}-0123456789ab`);
  const staleTmp = path.join(snaps.root, 'tmp', `layer-${dead}-abcdef012345`);
  for (const d of [staleMount, staleTmp]) await fsp.mkdir(path.join(d, 'x'), { recursive: true });
  const mine = path.join(snaps.root, 'tmp', `layer-${process.pid}-abcdef012345`);
  await fsp.mkdir(mine);
  await Snapshotter.open({ root: snaps.root, blobs: snaps.blobs });
  for (const d of ['snapshots', 'l', 'chains', 'mounts', 'tmp', 'empty']) expect((await fsp.stat(path.join(snaps.root, d))).isDirectory()).toBe(true);
  expect((await fsp.stat(snaps.root)).mode & 0o777).toBe(0o700);
  expect(await fsp.readdir(path.join(snaps.root, 'mounts'))).toEqual([]);
  expect(await fsp.readdir(path.join(snaps.root, 'tmp'))).toEqual([path.basename(mine)]);
});

test('a file where a layout directory belongs is refused, as before', async () => {
  const { snaps } = await openStore();
  await fsp.rm(path.join(snaps.root, 'chains'), { recursive: true });
  await fsp.writeFile(path.join(snaps.root, 'chains'), 'not a directory');
  await expect(Snapshotter.open({ root: snaps.root, blobs: snaps.blobs })).rejects.toMatchObject({ code: 'EEXIST' });
});
