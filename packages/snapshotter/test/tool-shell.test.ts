// The tool shells that run mount, umount and getfattr for layer commits (one fork of a small sh
// each, not a process start from Node): what a tool gives back, and how many shells there are.
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { ToolShell, ToolShellPool } from '../src/tool-shell.js';
import { readXattrsTree, toolShells } from '../src/sys.js';
import { syscalls } from '../src/syscall-helper.js';
import { REPO_ROOT } from '@hoist/testkit';
import { openStore, tmpdir, withMount } from './helpers.js';

describe('ToolShell', () => {
  test("gives a tool's stdout, stderr and exit status apart, run in its cwd", async () => {
    const sh = new ToolShell();
    const dir = await tmpdir('ts-');
    try {
      const r = await sh.run('sh', ['-c', "pwd; printf 'no newline'; echo oops >&2; exit 3"], dir);
      expect(r).toEqual({ status: 3, stdout: Buffer.from(`${dir}\nno newline`), stderr: 'oops' });
      // quoting: arguments reach the tool as they are
      const q = await sh.run('printf', ['%s|', "it's", 'a b', '$HOME', 'x\ny']);
      expect(q.stdout.toString()).toBe("it's|a b|$HOME|x\ny|");
      const big = await sh.run('sh', ['-c', 'yes abcdefg | head -n 100000']);
      expect(big.stdout.length).toBe(800000);
      expect((await sh.run('true', [])).status).toBe(0);
    } finally {
      sh.close();
    }
  });

  test('tools run in the C locale; xattrs of files with non-ASCII names still read back by name', async () => {
    const sh = new ToolShell();
    const dir = await tmpdir('ts-');
    try {
      expect((await sh.run('sh', ['-c', 'echo "$LC_ALL"'])).stdout.toString()).toBe('C\n');
      const name = path.join(dir, 'ünï cødé\\x=y');
      await fsp.writeFile(name, '');
      expect(spawnSync('setfattr', ['-n', 'user.hoist', '-v', 'v1', '--', name]).status).toBe(0);
      const xattrs = await readXattrsTree(dir);
      expect(xattrs.get(name)?.get('user.hoist')).toEqual(Buffer.from('v1'));
    } finally {
      sh.close();
    }
  });

  test('a tool that is not installed fails with a status, as a failed tool', async () => {
    const sh = new ToolShell();
    try {
      const r = await sh.run('no-such-tool-hoist', ['x']);
      expect(r.status).toBe(127);
      expect(r.stderr).toMatch(/not found/);
    } finally {
      sh.close();
    }
  });
});

describe('ToolShell and the life of the Node process', () => {
  test('a command in flight keeps Node running until its output is in; an idle shell does not keep it running', () => {
    const mod = path.join(REPO_ROOT, 'packages/snapshotter/dist/tool-shell.js');
    const script = `const { ToolShell } = await import(${JSON.stringify(mod)}); const s = new ToolShell(); const r = await s.run('sh', ['-c', 'sleep 0.2; echo done']); process.stdout.write(r.stdout);`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('done\n');
  });
});

describe('ToolShellPool', () => {
  /** The pid of the shell that ran a command (the tool's parent). */
  async function shellPid(pool: ToolShellPool, cmd = 'echo $PPID'): Promise<string> {
    return (await pool.run('sh', ['-c', cmd]))!.stdout.toString().trim().split('\n').at(-1)!;
  }

  test('one shell serves commands one after another; two at once get two shells, never more than max', async () => {
    const pool = new ToolShellPool(2);
    try {
      const a = await shellPid(pool);
      expect(await shellPid(pool)).toBe(a);
      const three = await Promise.all([shellPid(pool, 'sleep 0.1; echo $PPID'), shellPid(pool, 'sleep 0.1; echo $PPID'), shellPid(pool, 'echo $PPID')]);
      expect(new Set(three).size).toBe(2);
      expect(pool.count).toBe(5);
    } finally {
      pool.close();
    }
  });

  test('a shell that died is replaced by a new one', async () => {
    const pool = new ToolShellPool(1);
    try {
      const a = await shellPid(pool);
      process.kill(Number(a), 'SIGKILL');
      await new Promise((r) => setTimeout(r, 50));
      const b = await shellPid(pool);
      expect(b).not.toBe(a);
    } finally {
      pool.close();
    }
  });
});

describe('a layer commit: the syscall helper, the tool shells where it cannot run', () => {
  async function commitCounts(): Promise<{ helper: number; tools: number }> {
    const { snaps } = await openStore();
    expect(snaps.driver).toBe('overlay');
    const [h, t] = [syscalls.count, toolShells.count];
    await withMount(snaps, [], async (m) => {
      await fsp.writeFile(path.join(m.root, 'f'), 'x');
      await m.commit();
    });
    return { helper: syscalls.count - h, tools: toolShells.count - t };
  }

  test('mount, xattr read and unmount: three helper calls per mounted commit, no tool', async () => {
    expect(await commitCounts()).toEqual({ helper: 3, tools: 0 });
  });

  test('without the helper (it died, or cannot run here): mount, getfattr and umount through the tool shells', async () => {
    syscalls.close();
    expect(syscalls.usable).toBe(false);
    expect(await commitCounts()).toEqual({ helper: 0, tools: 3 });
  });
});
