// The repository's Jest environment (scripts/jest-environment.mjs) removes the temp dirs that test
// helpers register, after the test file, and never deletes through a mount point.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT, mountsUnder, run, tempDir } from '@hoist/testkit';

type EnvModule = { removeTempDirs(dirs: string[]): Promise<string[]> };
const env = async (): Promise<EnvModule> => (await import(path.join(REPO_ROOT, 'scripts', 'jest-environment.mjs'))) as EnvModule;

async function exists(p: string): Promise<boolean> {
  return fsp.lstat(p).then(
    () => true,
    () => false,
  );
}

async function mount(args: string[]): Promise<void> {
  const r = await run('mount', args);
  if (r.code !== 0) throw new Error(`mount ${args.join(' ')}: ${r.stderr}`);
}

describe('temp dirs of the tests', () => {
  test('this environment takes registrations (what tempDir registers)', () => {
    expect(typeof (globalThis as Record<symbol, unknown>)[Symbol.for('hoist.registerTempDir')]).toBe('function');
  });

  test('removeTempDirs removes a tree, not what a symlink in it points at, and skips dirs already gone', async () => {
    const [dir, outside] = await Promise.all([tempDir('rm-tree'), tempDir('rm-outside')]);
    await fsp.mkdir(path.join(dir, 'a', 'b'), { recursive: true });
    await fsp.writeFile(path.join(dir, 'a', 'b', 'f'), 'x');
    await fsp.writeFile(path.join(outside, 'keep'), 'k');
    await fsp.symlink(outside, path.join(dir, 'a', 'link'));
    const gone = path.join(path.dirname(dir), `${path.basename(dir)}-never-made`);
    expect(await (await env()).removeTempDirs([dir, gone])).toEqual([]);
    expect(await exists(dir)).toBe(false);
    expect(await fsp.readFile(path.join(outside, 'keep'), 'utf8')).toBe('k');
  });

  test('a dir with a mount point below it (tmpfs, or a bind mount of another dir) is left and reported, the mounted files untouched', async () => {
    const [dir, outside] = await Promise.all([tempDir('rm-mounted'), tempDir('rm-bound')]);
    await fsp.writeFile(path.join(outside, 'keep'), 'k');
    await fsp.mkdir(path.join(dir, 'bind'));
    await fsp.mkdir(path.join(dir, 'tmpfs'));
    try {
      await mount(['--bind', outside, path.join(dir, 'bind')]);
      await mount(['-t', 'tmpfs', 'tmpfs', path.join(dir, 'tmpfs')]);
      await fsp.writeFile(path.join(dir, 'tmpfs', 'on-tmpfs'), 't');
      const left = await (await env()).removeTempDirs([dir]);
      expect(left).toHaveLength(1);
      expect(left[0]).toContain(`${dir}: mount points at or below it`);
      expect(left[0]).toContain(path.join(dir, 'bind'));
      expect(left[0]).toContain(path.join(dir, 'tmpfs'));
      expect(await fsp.readFile(path.join(outside, 'keep'), 'utf8')).toBe('k');
      expect(await fsp.readFile(path.join(dir, 'tmpfs', 'on-tmpfs'), 'utf8')).toBe('t');
    } finally {
      for (const m of (await mountsUnder(dir)).reverse()) await run('umount', [m]);
    }
    expect(await mountsUnder(dir)).toEqual([]);
    expect(await (await env()).removeTempDirs([dir])).toEqual([]);
    expect(await exists(dir)).toBe(false);
    expect(await fsp.readFile(path.join(outside, 'keep'), 'utf8')).toBe('k');
  });
});
