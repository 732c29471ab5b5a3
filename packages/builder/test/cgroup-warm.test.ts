// Keeping the cgroup attach lock warm before a RUN (issue 16): which cgroup.procs is written,
// and that writing it moves nobody.
import { spawnSync } from 'node:child_process';
import { promises as fsp, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { SyscallHelper } from '@hoist/snapshotter';
import { tempDir } from '@hoist/testkit';
import { ownCgroupProcs, warmCgroupAttach } from '../src/sandbox/cgroups.js';

/** A fake cgroup mount tree under `root` with a cgroup.procs at each of `files`, and a /proc/self/cgroup. */
async function layout(files: string[], selfCgroup: string): Promise<{ root: string; self: string }> {
  const dir = await tempDir('cgw');
  const root = path.join(dir, 'fs');
  for (const f of files) {
    await fsp.mkdir(path.dirname(path.join(root, f)), { recursive: true });
    await fsp.writeFile(path.join(root, f), '');
  }
  const self = path.join(dir, 'cgroup');
  await fsp.writeFile(self, selfCgroup);
  return { root, self };
}

describe('ownCgroupProcs', () => {
  test('hybrid host: the first hierarchy listed that is mounted (name= dropped, combined controllers as one mount)', async () => {
    const { root, self } = await layout(['systemd/user.slice/cgroup.procs', 'cpu,cpuacct/x/cgroup.procs', 'unified/y/cgroup.procs'], '12:pids:/p\n4:cpu,cpuacct:/x\n1:name=systemd:/user.slice\n0::/y\n');
    expect(ownCgroupProcs(self, root)).toBe(path.join(root, 'cpu,cpuacct/x/cgroup.procs'));
  });

  test('pure v2 host: the cgroup under the v2 root; on a hybrid one, under unified', async () => {
    const v2 = await layout(['system.slice/a.service/cgroup.procs'], '0::/system.slice/a.service\n');
    expect(ownCgroupProcs(v2.self, v2.root)).toBe(path.join(v2.root, 'system.slice/a.service/cgroup.procs'));
    const hybrid = await layout(['unified/cgroup.procs'], '0::/\n');
    expect(ownCgroupProcs(hybrid.self, hybrid.root)).toBe(path.join(hybrid.root, 'unified/cgroup.procs'));
  });

  test('nothing mounted where runc looks, or no /proc/self/cgroup: none', async () => {
    const { root, self } = await layout([], '5:memory:/m\n0::/z\n');
    expect(ownCgroupProcs(self, root)).toBeUndefined();
    expect(ownCgroupProcs(path.join(root, 'no-such-file'), root)).toBeUndefined();
  });

  test('on this machine: a cgroup.procs that lists this process', () => {
    const file = ownCgroupProcs();
    expect(file).toBeDefined();
    expect(readFileSync(file!, 'utf8').split('\n')).toContain(String(process.pid));
  });
});

describe('warmCgroupAttach', () => {
  test("the helper's warmer writes this process's own cgroup.procs and stays in the cgroup it was in", async () => {
    const h = new SyscallHelper();
    try {
      warmCgroupAttach(h);
      await h.x32Abi(); // answered after K: the warmer has been forked
      const helper = (h as unknown as { proc: { pid: number } }).proc.pid;
      const warmer = Number(spawnSync('ps', ['-o', 'pid=', '--ppid', String(helper)]).stdout.toString().trim().split('\n')[0]);
      expect(warmer).toBeGreaterThan(0);
      expect(readFileSync(`/proc/${warmer}/cgroup`, 'utf8')).toBe(readFileSync('/proc/self/cgroup', 'utf8'));
      expect(readFileSync(ownCgroupProcs()!, 'utf8').split('\n')).toContain(String(warmer));
    } finally {
      h.close();
    }
  });
});
