/**
 * COPY's view of the context and its copier, without a sandbox: .dockerignore allow-lists (the
 * context root and re-included directories stay), hard links kept within one match, and several
 * matches into a destination without a trailing slash.
 */
import { createHash } from 'node:crypto';
import { promises as fsp, type Stats } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createDockerignoreMatcher } from '@hoist/parser';
import { collectSources, type SourceItem } from '@hoist/builder';
import { copyInto } from '../src/copy.js';
import { digestSources } from '../src/sources.js';
import type { FileDigests } from '../src/stat-cache.js';

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

describe('context digests (issue 16: walked and hashed several files at a time)', () => {
  const sha = (b: string | Buffer): string => createHash('sha256').update(b).digest('hex');

  /** A FileDigests that hashes every file and records how many hashes ran at once. */
  function counting(): FileDigests & { maxInFlight: number; seen: Map<string, string> } {
    let inFlight = 0;
    const d = {
      maxInFlight: 0,
      seen: new Map<string, string>(),
      async digest(abs: string, _st: Stats, hash: () => Promise<string>): Promise<string> {
        d.maxInFlight = Math.max(d.maxInFlight, ++inFlight);
        try {
          const hex = await hash();
          d.seen.set(abs, hex);
          return hex;
        } finally {
          inFlight--;
        }
      },
    };
    return d;
  }

  it('hashes files concurrently and gets the same digest as without a stat cache', async () => {
    const files = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`d${i % 4}/f${i}.txt`, `content ${i}\n`]));
    const ctx = await context('many', files);
    const items = await collectSources(ctx, ['.']);
    const d = counting();
    expect(await digestSources(items, d)).toBe(await digestSources(items));
    expect(d.maxInFlight).toBeGreaterThan(1);
    expect(d.seen.size).toBe(40);
    for (const [p, content] of Object.entries(files)) expect(d.seen.get(path.join(ctx, p))).toBe(sha(content));
  });

  it('keeps the walk order: swapping two files contents changes the digest', async () => {
    const a = await context('swap-a', { 'x.txt': 'one', 'y.txt': 'two' });
    const b = await context('swap-b', { 'x.txt': 'two', 'y.txt': 'one' });
    const [da, db] = [await digestSources(await collectSources(a, ['.'])), await digestSources(await collectSources(b, ['.']))];
    expect(da).not.toBe(db);
    expect(rels(await collectSources(a, ['.']))).toEqual([['', 'x.txt', 'y.txt']]);
  });

  it('hashes a large file whole, and a small file that grew after its stat to its end', async () => {
    const big = Buffer.alloc(600 * 1024, 7);
    const ctx = await context('sizes', { 'big.bin': big.toString('latin1'), 'small.txt': 'abc' });
    const items = await collectSources(ctx, ['.']);
    await fsp.appendFile(path.join(ctx, 'small.txt'), 'def');
    const d = counting();
    await digestSources(items, d);
    expect(d.seen.get(path.join(ctx, 'big.bin'))).toBe(sha(big));
    expect(d.seen.get(path.join(ctx, 'small.txt'))).toBe(sha('abcdef'));
  });
});

describe("the copier's fs calls per file (issue 16)", () => {
  /** Counts calls of some fs.promises functions (the copier calls them through that object) while `fn` runs. */
  async function counting<T>(names: Array<'lstat' | 'chmod' | 'lchown'>, fn: () => Promise<T>): Promise<{ result: T; calls: Record<string, string[]> }> {
    const calls: Record<string, string[]> = {};
    const fns = fsp as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    const saved = names.map((n) => [n, fns[n]!] as const);
    for (const [n, orig] of saved) {
      calls[n] = [];
      fns[n] = (p: unknown, ...rest: unknown[]) => {
        calls[n]!.push(String(p));
        return orig.call(fsp, p, ...rest);
      };
    }
    try {
      return { result: await fn(), calls };
    } finally {
      for (const [n, orig] of saved) fns[n] = orig;
    }
  }

  it('files in a directory the copy created are not looked up or chmod-ed again; modes and setuid bits are right', async () => {
    const ctx = await context('calls', { 'sub/a.txt': 'a', 'sub/b.sh': 'b', 'sub/c': 'c', 'sub/deeper/d': 'd' });
    await fsp.chmod(path.join(ctx, 'sub/b.sh'), 0o755);
    await fsp.chmod(path.join(ctx, 'sub/c'), 0o4755);
    const root = path.join(dir, 'calls-root');
    await fsp.mkdir(root);
    const items = await collectSources(ctx, ['.']);
    const { calls } = await counting(['lstat', 'chmod', 'lchown'], () => copyInto(root, items, { dest: '/app/', createdTime: 0 }));
    const out = (p: string): string => path.join(root, 'app', p);
    // every file's directory was created by this copy: no lookup of an existing target there
    for (const f of ['sub/a.txt', 'sub/b.sh', 'sub/c', 'sub/deeper/d']) expect(calls.lstat).not.toContain(out(f));
    // copyFile gave the plain files their modes; only the setuid file needs a chmod after its chown
    expect(calls.chmod!.filter((p) => p.startsWith(out('sub/')) && !p.endsWith('sub') && !p.endsWith('deeper'))).toEqual([out('sub/c')]);
    const modes = await Promise.all(['sub/a.txt', 'sub/b.sh', 'sub/c', 'sub/deeper/d'].map(async (f) => (await fsp.lstat(out(f))).mode & 0o7777));
    expect(modes).toEqual([0o644, 0o755, 0o4755, 0o644]);
    // made by this (root) process in fresh directories: already 0:0, no chown
    for (const f of ['sub/a.txt', 'sub/b.sh', 'sub/c', 'sub/deeper/d']) expect(calls.lchown).not.toContain(out(f));
    const owners = await Promise.all(['sub/a.txt', 'sub/deeper/d'].map(async (f) => fsp.lstat(out(f))));
    expect(owners.map((st) => [st.uid, st.gid])).toEqual([[0, 0], [0, 0]]);
  });

  it('--chown and setgid directories still chown every file', async () => {
    const ctx = await context('owners', { 'sg/a.txt': 'a', 'plain/b.txt': 'b' });
    await fsp.chmod(path.join(ctx, 'sg'), 0o2775);
    const items = await collectSources(ctx, ['.']);
    const r1 = path.join(dir, 'owners-root1');
    await fsp.mkdir(r1);
    const sg = await counting(['lchown'], () => copyInto(r1, items, { dest: '/app/', createdTime: 0 }));
    expect(sg.calls.lchown).toContain(path.join(r1, 'app/sg/a.txt'));
    expect(sg.calls.lchown).not.toContain(path.join(r1, 'app/plain/b.txt'));
    const r2 = path.join(dir, 'owners-root2');
    await fsp.mkdir(r2);
    await copyInto(r2, items, { dest: '/app/', createdTime: 0, owner: { uid: 1000, gid: 1001 } });
    const st = await Promise.all(['app/sg/a.txt', 'app/plain/b.txt'].map((f) => fsp.lstat(path.join(r2, f))));
    expect(st.map((x) => [x.uid, x.gid])).toEqual([[1000, 1001], [1000, 1001]]);
  });

  it('a file over an existing one in an existing directory still replaces it', async () => {
    const ctx = await context('replace', { 'sub/a.txt': 'new' });
    const root = path.join(dir, 'replace-root');
    await fsp.mkdir(path.join(root, 'app/sub'), { recursive: true });
    await fsp.writeFile(path.join(root, 'app/sub/a.txt'), 'old contents', { mode: 0o600 });
    await copyInto(root, await collectSources(ctx, ['.']), { dest: '/app/', createdTime: 0, chmod: '640' });
    expect(await fsp.readFile(path.join(root, 'app/sub/a.txt'), 'utf8')).toBe('new');
    expect((await fsp.lstat(path.join(root, 'app/sub/a.txt'))).mode & 0o7777).toBe(0o640);
  });
});
