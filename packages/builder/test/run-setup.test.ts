// The work of a RUN between its root's mount and the runtime's start: mount-point checks made
// once per path, as strict as before. Counts and order, never time.
import { promises as fsp, type Stats } from 'node:fs';
import { jest } from '@jest/globals';
import * as path from 'node:path';
import { tempDir } from '@hoist/testkit';
import { lstatOnce, type Lstat } from '../src/rootfs.js';
import { missingPaths } from '../src/run-mounts.js';

const SANDBOX_TARGETS = ['/etc/hosts', '/etc/resolv.conf', '/proc', '/sys', '/dev'];

const everyTime: Lstat = (p) => fsp.lstat(p).catch((): Stats | undefined => undefined);

/** A root whose /etc/hosts and /etc/resolv.conf are symlinks out of it, /proc a symlink to a missing dir, no /sys. */
async function hostileRoot(): Promise<{ root: string; outside: string }> {
  const base = await tempDir('run-setup-');
  const root = path.join(base, 'root');
  const outside = path.join(base, 'outside');
  await fsp.mkdir(path.join(root, 'etc'), { recursive: true });
  await fsp.mkdir(path.join(root, 'dev'));
  await fsp.mkdir(outside);
  await fsp.writeFile(path.join(outside, 'hosts'), 'host file\n');
  await fsp.symlink(path.join(outside, 'hosts'), path.join(root, 'etc', 'hosts'));
  await fsp.symlink('../../outside/resolv.conf', path.join(root, 'etc', 'resolv.conf'));
  await fsp.symlink('/nowhere/proc', path.join(root, 'proc'));
  return { root, outside };
}

const outsideOf = (root: string): string => path.join(path.dirname(root), 'outside');

describe('mount points of a RUN: each path lstat-ed once, as strict as before', () => {
  test('the sandbox targets checked side by side with one lstat per path find what checking each alone finds', async () => {
    const { root } = await hostileRoot();
    const alone = [];
    for (const t of SANDBOX_TARGETS) alone.push(...(await missingPaths(root, t, everyTime)));
    const lstat = lstatOnce();
    const shared = (await Promise.all(SANDBOX_TARGETS.map((t) => missingPaths(root, t, lstat)))).flat();
    expect(shared).toEqual(alone);
    // the symlinks out of the root are re-rooted: every path to create or remove is inside it
    for (const c of shared) expect(c.abs.startsWith(root + path.sep)).toBe(true);
    // the first missing component of each: the re-rooted symlink targets, and /sys
    expect(shared.map((c) => path.relative(root, c.abs))).toEqual([path.join(path.relative('/', outsideOf(root)), 'hosts'), 'outside/resolv.conf', 'nowhere/proc', 'sys']);
  });

  test('a symlinked /etc/hosts is resolved inside the root, however often its answer is reused', async () => {
    const { root, outside } = await hostileRoot();
    const lstat = lstatOnce();
    const first = await missingPaths(root, '/etc/hosts', lstat);
    const again = await missingPaths(root, '/etc/hosts', lstat);
    expect(again).toEqual(first);
    expect(first).toHaveLength(1);
    expect(first[0]!.target).toBe(path.join(root, outside, 'hosts'));
    expect(first[0]!.target.startsWith(root + path.sep)).toBe(true);
    // the host's file was never the answer
    expect(first.some((c) => c.abs.startsWith(outside) || c.target.startsWith(outside))).toBe(false);
  });

  test('one lstat per path for the five targets (checked each alone, /etc was lstat-ed again and again)', async () => {
    const { root } = await hostileRoot();
    const spy = jest.spyOn(fsp, 'lstat');
    const perPath = (): Map<string, number> => {
      const m = new Map<string, number>();
      for (const [p] of spy.mock.calls) m.set(String(p), (m.get(String(p)) ?? 0) + 1);
      spy.mockClear();
      return m;
    };
    try {
      for (const t of SANDBOX_TARGETS) await missingPaths(root, t, everyTime);
      const alone = perPath();
      const lstat = lstatOnce();
      await Promise.all(SANDBOX_TARGETS.map((t) => missingPaths(root, t, lstat)));
      const shared = perPath();
      expect(alone.get(path.join(root, 'etc'))).toBeGreaterThanOrEqual(5);
      expect([...shared.keys()].sort()).toEqual([...alone.keys()].sort());
      expect([...shared.values()].every((n) => n === 1)).toBe(true);
    } finally {
      spy.mockRestore();
    }
  });
});
