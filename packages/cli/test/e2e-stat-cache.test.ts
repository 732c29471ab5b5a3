/**
 * The context stat cache end to end (issue 16): a context file the cache has written down is
 * edited without changing its size, and its mtime is put back with utimes; the rebuild must see
 * it (the ctime moved): the COPY step runs again and the image holds the new content. Each
 * context has its own file in the store.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { hoist, storeWithBusybox, tempDir } from '@hoist/testkit';

const MTIME = 1_700_000_000;
/** The cache writes down only files whose ctime is older than this (see stat-cache.ts). */
const RACY_MS = 2000;

describe('context stat cache', () => {
  let root: string;
  let ctx: string;

  beforeAll(async () => {
    [root, ctx] = await Promise.all([storeWithBusybox(), tempDir('stat-ctx')]);
  });
  afterAll(async () => {
    await fsp.rm(root, { recursive: true, force: true });
    await fsp.rm(ctx, { recursive: true, force: true });
  });

  const build = (): ReturnType<typeof hoist> => hoist(['build', '--root', root, '--progress', 'plain', '-t', 'stat:1', ctx]);
  /** The paths in each of the store's stat cache files (one per context). */
  const statPaths = async (): Promise<string[][]> => {
    const dir = path.join(root, 'cache', 'context-stat');
    const files = (await fsp.readdir(dir)).sort();
    return Promise.all(files.map(async (f) => (JSON.parse(await fsp.readFile(path.join(dir, f), 'utf8')) as { paths: string[] }).paths));
  };

  it('a same-size edit with the mtime reset re-runs COPY and the image has the new content', async () => {
    const file = path.join(ctx, 'data', 'file.txt');
    await fsp.mkdir(path.dirname(file), { recursive: true });
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox:latest\nCOPY data/ /data/\nCMD ["cat", "/data/file.txt"]\n');
    await fsp.writeFile(path.join(ctx, 'data', 'other.txt'), 'unchanged\n');
    await fsp.writeFile(file, 'version 1\n');
    await fsp.utimes(file, MTIME, MTIME);
    // a file changed just now is never written down (racy): let its ctime settle first
    while (Date.now() - (await fsp.stat(file)).ctimeMs <= RACY_MS + 100) await sleep(200);

    const first = await build();
    expect(first.code).toBe(0);
    const cached = await build();
    expect(cached.code).toBe(0);
    expect(cached.stderr).toMatch(/\(0 steps run, \d+ cached\)/);
    // the cache knows the file, so the next build trusts its stat unless it proves a change
    expect(await statPaths()).toEqual([expect.arrayContaining([file])]);

    const before = await fsp.stat(file);
    await fsp.writeFile(file, 'version 2\n');
    await fsp.utimes(file, MTIME, MTIME);
    const after = await fsp.stat(file);
    expect([after.size, after.mtimeMs, after.ino]).toEqual([before.size, before.mtimeMs, before.ino]);

    const rebuilt = await build();
    expect(rebuilt.code).toBe(0);
    expect(rebuilt.stderr).toMatch(/\(1 steps run, \d+ cached\)/);
    expect(rebuilt.stdout.trim()).not.toBe(cached.stdout.trim());
    const out = await hoist(['run', '--root', root, 'stat:1']);
    expect(out.stdout).toBe('version 2\n');
  });

  it('another context in the same store gets a file of its own: a build reads only its context\'s entries', async () => {
    const other = await tempDir('stat-other');
    try {
      await fsp.writeFile(path.join(other, 'Dockerfile'), 'FROM busybox:latest\nCOPY x.txt /x.txt\n');
      await fsp.writeFile(path.join(other, 'x.txt'), 'x\n');
      const past = new Date(Date.now() - 60_000);
      await fsp.utimes(path.join(other, 'x.txt'), past, past);
      while (Date.now() - (await fsp.stat(path.join(other, 'x.txt'))).ctimeMs <= RACY_MS + 100) await sleep(200);
      expect((await hoist(['build', '--root', root, '--progress', 'plain', '-t', 'other:1', other])).code).toBe(0);
      const files = await statPaths();
      expect(files).toHaveLength(2);
      // each file holds the paths of one context only
      for (const paths of files) {
        const inCtx = paths.filter((p) => p.startsWith(`${ctx}/`)).length;
        const inOther = paths.filter((p) => p.startsWith(`${other}/`)).length;
        expect([inCtx, inOther].filter((n) => n > 0)).toHaveLength(1);
        expect(inCtx + inOther).toBe(paths.length);
      }
    } finally {
      await fsp.rm(other, { recursive: true, force: true });
    }
  });
});
