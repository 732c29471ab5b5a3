/**
 * The next hoist start reclaims, by pid, what a dead hoist process left in the store and on the
 * host — and never what a live process owns.
 */
import { spawn, spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { reclaimStore } from '@hoist/builder';
import { hoist, mountsUnder, tempDir } from '@hoist/testkit';

/** The pid of a process that has exited (and been reaped). */
async function deadPid(): Promise<number> {
  const c = spawn('true');
  await new Promise((r) => c.on('exit', r));
  return c.pid!;
}

async function touch(file: string, text = 'x'): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  await fsp.writeFile(file, text);
}

const exists = (p: string): Promise<boolean> => fsp.lstat(p).then(() => true, () => false);

describe('reclaimStore', () => {
  let root: string;
  let cgroups: string;
  let live: ReturnType<typeof spawn>;
  beforeEach(async () => {
    root = await tempDir('reclaim');
    cgroups = path.join(root, 'fake-cgroup-fs');
    live = spawn('sleep', ['600'], { stdio: 'ignore' });
  });
  afterEach(async () => {
    live.kill('SIGKILL');
    for (const m of await mountsUnder(root)) spawnSync('umount', ['-l', m]);
    await fsp.rm(root, { recursive: true, force: true });
  });

  it('removes a dead process\'s temp dirs, tmpfs and rootfs mounts, blob temp files, runtime state, cgroups and lease; keeps a live one\'s', async () => {
    const dead = await deadPid();
    const alive = live.pid!;
    const of = (pid: number): Record<string, string> => ({
      etc: path.join(root, 'tmp', `etc-${pid}`, 'hosts'),
      secret: path.join(root, 'tmp', `sandbox-${pid}-0a1b2c3d4e5f`, `secret-${pid}-abcdef012345`, 'secret'),
      heredoc: path.join(root, 'tmp', `heredoc-${pid}-abcdef012345`, 'script'),
      bundle: path.join(root, 'tmp', 'bundles', `hoist-${pid}-abcdef012345`, 'config.json'),
      rootfs: path.join(root, 'snapshots', 'mounts', `${pid}-abcdef012345`, 'merged', 'file'),
      unpack: path.join(root, 'snapshots', 'tmp', `layer-${pid}-abcdef012345`, 'file'),
      blob: path.join(root, 'oci', 'tmp', `blob-${pid}-0123456789abcdef`),
      state: path.join(root, 'runtime', 'runc', `hoist-${pid}-abcdef012345`, 'state.json'),
      lease: path.join(root, 'active', `shared-${pid}`),
    });
    const mountTmpfs = (dir: string): void => void spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', dir], { stdio: 'ignore' });
    for (const pid of [dead, alive]) {
      const f = of(pid);
      await fsp.mkdir(path.dirname(path.dirname(f.secret!)), { recursive: true });
      await fsp.mkdir(path.dirname(f.rootfs!), { recursive: true });
      mountTmpfs(path.dirname(path.dirname(f.secret!)));
      mountTmpfs(path.dirname(f.rootfs!));
      for (const file of Object.values(f)) await touch(file);
      for (const h of ['hoist', 'cpu/hoist', 'unified/hoist']) await fsp.mkdir(path.join(cgroups, h, `hoist-${pid}-abcdef012345`), { recursive: true });
    }
    expect((await mountsUnder(root)).length).toBe(4);

    const report = await reclaimStore(root, { cgroupFs: cgroups });

    expect(report.pids).toEqual([dead]);
    const state = async (pid: number): Promise<Record<string, boolean>> => {
      const out: Record<string, boolean> = {};
      for (const [k, p] of Object.entries(of(pid))) out[k] = await exists(p);
      for (const h of ['hoist', 'cpu/hoist', 'unified/hoist']) out[`cgroup ${h}`] = await exists(path.join(cgroups, h, `hoist-${pid}-abcdef012345`));
      return out;
    };
    const deadState = await state(dead);
    expect(Object.entries(deadState).filter(([, there]) => there)).toEqual([]);
    const liveState = await state(alive);
    expect(Object.entries(liveState).filter(([, there]) => !there)).toEqual([]);
    const liveMounts = [path.dirname(path.dirname(of(alive).secret!)), path.dirname(of(alive).rootfs!)];
    expect((await mountsUnder(root)).sort()).toEqual(liveMounts.sort());
  });

  it('reclaims nothing of its own process', async () => {
    const mine = path.join(root, 'tmp', `etc-${process.pid}`, 'hosts');
    await touch(mine);
    const report = await reclaimStore(root, { cgroupFs: cgroups });
    expect(report.pids).toEqual([]);
    expect(await exists(mine)).toBe(true);
  });
});

describe('hoist fsck and prune', () => {
  let root: string;
  beforeAll(async () => {
    root = await tempDir('reclaim-cli');
    expect((await hoist(['images', '--root', root])).code).toBe(0);
  });
  afterAll(async () => {
    await fsp.rm(root, { recursive: true, force: true });
  });

  for (const cmd of [['fsck'], ['prune', '-f']]) {
    it(`hoist ${cmd.join(' ')} reclaims a dead process's secret dir and half-written blob, and says so`, async () => {
      const dead = await deadPid();
      const left = [path.join(root, 'tmp', `secret-${dead}-abcdef012345`, 'secret'), path.join(root, 'oci', 'tmp', `blob-${dead}-0123456789abcdef`)];
      for (const f of left) await touch(f, 'leftover');
      const r = await hoist([...cmd, '--root', root]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`reclaimed what crashed process(es) ${dead} left`);
      for (const f of left) expect({ f, there: await exists(f) }).toEqual({ f, there: false });
    });
  }

  it('an old temp dir without a pid (from an older hoist) is a stray temp file for fsck, and prune removes it', async () => {
    const old = path.join(root, 'tmp', 'secret-Ab12Cd');
    await touch(path.join(old, 'secret'), 'leftover');
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    await fsp.utimes(old, twoHoursAgo, twoHoursAgo);
    const f = await hoist(['fsck', '--root', root]);
    expect(f.code).toBe(1);
    expect(f.stdout).toContain(`stray temp file(s) older than an hour (8B), e.g. ${old}`);
    const p = await hoist(['prune', '-f', '--root', root]);
    expect(p.stdout).toContain('Deleted temp files: 1');
    expect(await exists(old)).toBe(false);
  });
});
