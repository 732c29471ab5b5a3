/**
 * `hoist … | head`: when the reader of stdout (or stderr) is gone, every command ends quietly
 * with 141 (as SIGPIPE ends other tools), never with an unhandled EPIPE and a stack trace.
 * The pipe is a FIFO whose reading end is closed before hoist starts, so the very first write
 * fails: no timing is involved.
 */
import { spawn } from 'node:child_process';
import { closeSync, constants as fsc, openSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { hoist, HOIST_BIN, REPO_ROOT, run, storeWithBusybox, tempDir } from '@hoist/testkit';

let work: string;
let root: string;
beforeAll(async () => {
  [work, root] = await Promise.all([tempDir('pipe'), storeWithBusybox()]);
});
afterAll(async () => {
  await fsp.rm(work, { recursive: true, force: true });
  await fsp.rm(root, { recursive: true, force: true });
});

let fifos = 0;
/** Runs hoist with stdout (or stderr) on a pipe nobody reads any more. */
async function withClosedPipe(args: string[], which: 'stdout' | 'stderr' = 'stdout'): Promise<{ code: number | null; other: string }> {
  const fifo = path.join(work, `fifo-${fifos++}`);
  expect((await run('mkfifo', [fifo])).code).toBe(0);
  const reader = openSync(fifo, fsc.O_RDONLY | fsc.O_NONBLOCK);
  const writer = openSync(fifo, fsc.O_WRONLY);
  closeSync(reader);
  const child = spawn(process.execPath, [HOIST_BIN, ...args], { stdio: ['ignore', which === 'stdout' ? writer : 'pipe', which === 'stderr' ? writer : 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  closeSync(writer);
  let other = '';
  (which === 'stdout' ? child.stderr : child.stdout)!.on('data', (d: Buffer) => (other += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  return { code, other };
}

describe('a closed pipe ends hoist quietly', () => {
  it('--help of every command', async () => {
    const top = await hoist(['--help']);
    const commands = [...top.stdout.matchAll(/^  (\w+)(?: \[options\])?/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
    expect(commands.length).toBeGreaterThan(10);
    for (const cmd of ['', ...commands]) {
      const r = await withClosedPipe(cmd === '' ? ['--help'] : [cmd, '--help']);
      expect({ cmd, code: r.code, stderr: r.other }).toEqual({ cmd, code: 141, stderr: '' });
    }
  });

  it('commands that print results: version, plan, images, inspect, save', async () => {
    const runs: string[][] = [
      ['version'],
      ['plan', '--format', 'json', path.join(REPO_ROOT, 'fixtures', 'cache-multistage')],
      ['images', '--root', root],
      ['inspect', '--root', root, 'busybox'],
      ['save', '--root', root, 'busybox'],
    ];
    for (const args of runs) {
      const r = await withClosedPipe(args);
      expect({ args, code: r.code, stderr: r.other }).toEqual({ args, code: 141, stderr: '' });
    }
  });

  it('errors written to a closed stderr end the same way', async () => {
    const r = await withClosedPipe(['build', '--frobnicate', '.'], 'stderr');
    expect({ code: r.code, stdout: r.other }).toEqual({ code: 141, stdout: '' });
  });
});
