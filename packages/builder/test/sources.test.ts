/**
 * COPY's view of the context and its copier, without a sandbox: .dockerignore allow-lists (the
 * context root and re-included directories stay), hard links kept within one match, and several
 * matches into a destination without a trailing slash.
 */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createDockerignoreMatcher } from '@hoist/parser';
import { collectSources, type SourceItem } from '@hoist/builder';
import { copyInto } from '../src/copy.js';

let dir: string;
beforeAll(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hoist-sources-'));
});
afterAll(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

async function context(name: string, files: Record<string, string>): Promise<string> {
  const ctx = path.join(dir, name);
  for (const [p, content] of Object.entries(files)) {
    await fsp.mkdir(path.dirname(path.join(ctx, p)), { recursive: true });
    await fsp.writeFile(path.join(ctx, p), content);
  }
  return ctx;
}

const rels = (items: SourceItem[]): string[][] => items.map((i) => i.entries.map((e) => e.rel));

describe('.dockerignore allow-lists', () => {
  let ctx: string;
  beforeAll(async () => {
    ctx = await context('allow', { 'a.txt': 'a', 'b.txt': 'b', 'src/keep.txt': 'k', 'src/drop.txt': 'd', 'lib/x.js': 'x', '.dockerignore': '' });
  });

  it.each(['.', './', '/'])('"*" then "!a.txt": COPY %s sees only a.txt', async (src) => {
    const filter = createDockerignoreMatcher('*\n!a.txt\n');
    expect(rels(await collectSources(ctx, [src], { filter }))).toEqual([['', 'a.txt']]);
  });

  it('"**" then "!a.txt" is the same', async () => {
    const filter = createDockerignoreMatcher('**\n!a.txt\n');
    expect(rels(await collectSources(ctx, ['.'], { filter }))).toEqual([['', 'a.txt']]);
  });

  it('a lone "*" leaves an empty context root, not an error', async () => {
    const filter = createDockerignoreMatcher('*\n');
    expect(rels(await collectSources(ctx, ['.'], { filter }))).toEqual([['']]);
  });

  it('"!dir" re-includes the directory and everything in it', async () => {
    const filter = createDockerignoreMatcher('*\n!src\n');
    expect(rels(await collectSources(ctx, ['.'], { filter }))).toEqual([['', 'src', 'src/drop.txt', 'src/keep.txt']]);
    expect(rels(await collectSources(ctx, ['src'], { filter }))).toEqual([['', 'drop.txt', 'keep.txt']]);
  });

  it('an excluded directory with an exception below it is still there, holding only that', async () => {
    const filter = createDockerignoreMatcher('*\n!src/keep.txt\n');
    expect(rels(await collectSources(ctx, ['.'], { filter }))).toEqual([['', 'src', 'src/keep.txt']]);
    expect(rels(await collectSources(ctx, ['src'], { filter }))).toEqual([['', 'keep.txt']]);
    expect((await collectSources(ctx, ['*'], { filter })).map((i) => i.path)).toEqual(['src']);
    await expect(collectSources(ctx, ['lib'], { filter })).rejects.toMatchObject({ code: 'COPY_SOURCE_NOT_FOUND' });
  });

  it('wildcard sources see the context through the allow-list', async () => {
    const filter = createDockerignoreMatcher('*\n!a.txt\n');
    expect((await collectSources(ctx, ['*.txt'], { filter })).map((i) => i.path)).toEqual(['a.txt']);
  });
});

describe('hard links', () => {
  let ctx: string;
  beforeAll(async () => {
    ctx = await context('links', { 'd/a': 'same', 'd/c': 'other' });
    await fsp.link(path.join(ctx, 'd/a'), path.join(ctx, 'd/b'));
  });

  it('files linked to each other inside one copied directory stay one inode', async () => {
    const root = path.join(dir, 'links-root1');
    await fsp.mkdir(root);
    await copyInto(root, await collectSources(ctx, ['d']), { dest: '/out/', createdTime: 0 });
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((n) => fsp.lstat(path.join(root, 'out', n))));
    expect(b!.ino).toBe(a!.ino);
    expect([a!.nlink, b!.nlink, c!.nlink]).toEqual([2, 2, 1]);
    expect(c!.ino).not.toBe(a!.ino);
    expect(await fsp.readFile(path.join(root, 'out/b'), 'utf8')).toBe('same');
  });

  it('separately named sources are separate copies (BuildKit copies each match on its own)', async () => {
    const root = path.join(dir, 'links-root2');
    await fsp.mkdir(root);
    await copyInto(root, await collectSources(ctx, ['d/a', 'd/b']), { dest: '/out/', createdTime: 0 });
    const [a, b] = await Promise.all(['a', 'b'].map((n) => fsp.lstat(path.join(root, 'out', n))));
    expect(b!.ino).not.toBe(a!.ino);
    expect([a!.nlink, b!.nlink]).toEqual([1, 1]);
  });
});

describe('several matches into a destination without a trailing slash', () => {
  it('each match writes the destination path; the last one wins', async () => {
    const ctx = await context('multi', { 'one.txt': '1', 'two.txt': '2' });
    const root = path.join(dir, 'multi-root');
    await fsp.mkdir(root);
    await copyInto(root, await collectSources(ctx, ['*.txt']), { dest: '/testdir', createdTime: 0 });
    const st = await fsp.lstat(path.join(root, 'testdir'));
    expect(st.isFile()).toBe(true);
    expect(await fsp.readFile(path.join(root, 'testdir'), 'utf8')).toBe('2');
  });

  it('an existing directory still receives them by name', async () => {
    const ctx = path.join(dir, 'multi');
    const root = path.join(dir, 'multi-root2');
    await fsp.mkdir(path.join(root, 'testdir'), { recursive: true });
    await copyInto(root, await collectSources(ctx, ['*.txt']), { dest: '/testdir', createdTime: 0 });
    expect((await fsp.readdir(path.join(root, 'testdir'))).sort()).toEqual(['one.txt', 'two.txt']);
  });
});
