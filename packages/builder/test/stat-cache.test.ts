/**
 * The context stat cache (issue 16): a file whose dev/inode/size/mtime/ctime are unchanged is not
 * read again; a same-size edit with its mtime reset is still seen (its ctime moved); racy files
 * are never written down; the file on disk is bounded, written only when something is new, and
 * a damaged one is an empty cache. Counted (how often content is hashed), never timed.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { collectSources, digestSources } from '@hoist/builder';
import { StatCache, statCacheFile, type StatCacheOptions } from '../src/stat-cache.js';

let dir: string;
let ctx: string;
beforeAll(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hoist-stat-cache-'));
  ctx = path.join(dir, 'ctx');
  await fsp.mkdir(path.join(ctx, 'src'), { recursive: true });
});
afterAll(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

/** A cache whose clock runs an hour ahead: every file in these tests counts as settled (not racy). */
function cache(name: string, o: Partial<StatCacheOptions> = {}): StatCache {
  return new StatCache({ file: path.join(dir, `${name}.json`), tmpDir: path.join(dir, 'tmp'), roots: [ctx], now: () => Date.now() + 3_600_000, ...o });
}

/** Hash a file, counting the reads. */
function counter(): { reads: string[]; hash: (abs: string) => () => Promise<string> } {
  const reads: string[] = [];
  return {
    reads,
    hash: (abs) => async () => {
      reads.push(path.basename(abs));
      return createHash('sha256').update(await fsp.readFile(abs)).digest('hex');
    },
  };
}

async function lookup(c: StatCache, abs: string, hash: (abs: string) => () => Promise<string>): Promise<string> {
  return c.digest(abs, await fsp.stat(abs), hash(abs));
}

it('does not read an unchanged file again, in this build or the next', async () => {
  const f = path.join(ctx, 'src', 'same.txt');
  await fsp.writeFile(f, 'hello\n');
  const n = counter();
  const c = cache('same');
  const first = await lookup(c, f, n.hash);
  expect(await lookup(c, f, n.hash)).toBe(first);
  await c.save();
  const next = cache('same');
  expect(await lookup(next, f, n.hash)).toBe(first);
  expect(n.reads).toEqual(['same.txt']);
  expect(next.stats).toEqual({ hits: 1, misses: 0 });
  expect(first).toBe(createHash('sha256').update('hello\n').digest('hex'));
});

it('sees a same-size edit whose mtime was reset with utimes (the ctime moved)', async () => {
  const f = path.join(ctx, 'src', 'edit.txt');
  await fsp.writeFile(f, 'version 1\n');
  // a whole-second mtime, so that utimes can put back exactly the same value
  await fsp.utimes(f, 1_700_000_000, 1_700_000_000);
  const before = await fsp.stat(f);
  const n = counter();
  const c = cache('edit');
  const old = await lookup(c, f, n.hash);
  await c.save();
  await fsp.writeFile(f, 'version 2\n');
  await fsp.utimes(f, 1_700_000_000, 1_700_000_000);
  const after = await fsp.stat(f);
  expect([after.size, after.mtimeMs]).toEqual([before.size, before.mtimeMs]);
  const next = cache('edit');
  const now = await lookup(next, f, n.hash);
  expect(now).not.toBe(old);
  expect(now).toBe(createHash('sha256').update('version 2\n').digest('hex'));
  expect(n.reads).toEqual(['edit.txt', 'edit.txt']);
});

it('never writes down a file changed too recently to prove sameness (racy), nor one outside the context', async () => {
  const f = path.join(ctx, 'src', 'racy.txt');
  await fsp.writeFile(f, 'fresh\n');
  const outside = path.join(dir, 'outside.txt');
  await fsp.writeFile(outside, 'x\n');
  const n = counter();
  // the real clock: the file was changed just now
  const c = cache('racy', { now: Date.now });
  await lookup(c, f, n.hash);
  await lookup(c, f, n.hash);
  await lookup(cache('racy'), outside, n.hash);
  await lookup(cache('racy'), outside, n.hash);
  expect(n.reads).toEqual(['racy.txt', 'racy.txt', 'outside.txt', 'outside.txt']);
  await c.save();
  await expect(fsp.stat(path.join(dir, 'racy.json'))).rejects.toThrow();
});

it('keeps at most maxEntries, the most recently used', async () => {
  const names = ['a', 'b', 'c', 'd', 'e'];
  for (const x of names) await fsp.writeFile(path.join(ctx, `${x}.txt`), x);
  let t = Date.now() + 3_600_000;
  const c = cache('bound', { maxEntries: 3, now: () => t++ });
  const n = counter();
  for (const x of names) await lookup(c, path.join(ctx, `${x}.txt`), n.hash);
  await lookup(c, path.join(ctx, 'a.txt'), n.hash); // a is used again: it stays
  await c.save();
  const doc = JSON.parse(await fsp.readFile(path.join(dir, 'bound.json'), 'utf8')) as { paths: string[] };
  expect(doc.paths.map((p) => path.basename(p)).sort()).toEqual(['a.txt', 'd.txt', 'e.txt']);
});

it('writes nothing when nothing is new, and treats a damaged file as empty', async () => {
  const f = path.join(ctx, 'src', 'quiet.txt');
  await fsp.writeFile(f, 'q\n');
  const n = counter();
  const c = cache('quiet');
  await lookup(c, f, n.hash);
  await c.save();
  const saved = await fsp.stat(path.join(dir, 'quiet.json'));
  const again = cache('quiet');
  await lookup(again, f, n.hash);
  await again.save();
  expect((await fsp.stat(path.join(dir, 'quiet.json'))).ino).toBe(saved.ino);
  expect(await fsp.readdir(path.join(dir, 'tmp'))).toEqual([]);

  await fsp.writeFile(path.join(dir, 'quiet.json'), '{"version":1,"entries":');
  const damaged = cache('quiet');
  await lookup(damaged, f, n.hash);
  expect(damaged.stats).toEqual({ hits: 0, misses: 1 });
});

it('treats a file of the first format, or one whose arrays do not add up, as empty', async () => {
  const f = path.join(ctx, 'src', 'formats.txt');
  await fsp.writeFile(f, 'f\n');
  const st = await fsp.stat(f);
  const hex = createHash('sha256').update('f\n').digest('hex');
  const file = path.join(dir, 'formats.json');
  const v1 = { version: 1, entries: { [f]: [st.dev, st.ino, st.size, st.mtimeMs, st.ctimeMs, hex, Date.now()] } };
  const short = { version: 2, paths: [f], nums: [st.dev, st.ino, st.size, st.mtimeMs, st.ctimeMs], digests: hex };
  const shortHex = { version: 2, paths: [f], nums: [st.dev, st.ino, st.size, st.mtimeMs, st.ctimeMs, 0], digests: hex.slice(1) };
  for (const doc of [v1, short, shortHex]) {
    await fsp.writeFile(file, JSON.stringify(doc));
    const c = cache('formats');
    await c.ready();
    expect(c.known(f, st)).toBeUndefined();
  }
  const good = { version: 2, paths: [f], nums: [st.dev, st.ino, st.size, st.mtimeMs, st.ctimeMs, 0], digests: hex };
  await fsp.writeFile(file, JSON.stringify(good));
  const c = cache('formats');
  await c.ready();
  expect(c.known(f, st)).toBe(hex);
});

it('keeps the saved entries it did not touch, replaces those hashed again, and keeps non-ASCII names', async () => {
  const names = ['kept.txt', 'edited.txt', 'ünïcödé 名前.txt'];
  for (const n of names) await fsp.writeFile(path.join(ctx, 'src', n), n);
  const n = counter();
  const first = cache('merge');
  for (const x of names) await lookup(first, path.join(ctx, 'src', x), n.hash);
  await first.save();
  const edited = path.join(ctx, 'src', 'edited.txt');
  await fsp.writeFile(edited, 'EDITED');
  const second = cache('merge');
  for (const x of names) await lookup(second, path.join(ctx, 'src', x), n.hash);
  await second.save();
  const third = cache('merge');
  await third.ready();
  for (const x of names) {
    const abs = path.join(ctx, 'src', x);
    expect(third.known(abs, await fsp.stat(abs))).toBe(createHash('sha256').update(await fsp.readFile(abs)).digest('hex'));
  }
  // each read once, the edited file once more
  expect(n.reads).toEqual([...names, 'edited.txt']);
  // after a save the same cache goes on answering
  expect(second.known(edited, await fsp.stat(edited))).toBe(createHash('sha256').update('EDITED').digest('hex'));
});

it('gives digestSources the same key with and without the cache, and a new key after a same-size edit', async () => {
  const app = path.join(ctx, 'app');
  await fsp.mkdir(app, { recursive: true });
  await fsp.writeFile(path.join(app, 'one.txt'), 'one\n');
  await fsp.writeFile(path.join(app, 'two.txt'), 'two\n');
  await fsp.utimes(path.join(app, 'two.txt'), 1_700_000_000, 1_700_000_000);
  const items = await collectSources(ctx, ['app']);
  const plain = await digestSources(items);
  const c = cache('keys');
  expect(await digestSources(items, c)).toBe(plain);
  expect(await digestSources(await collectSources(ctx, ['app']), c)).toBe(plain);
  expect(c.stats).toEqual({ hits: 2, misses: 2 });
  await fsp.writeFile(path.join(app, 'two.txt'), 'TWO\n');
  await fsp.utimes(path.join(app, 'two.txt'), 1_700_000_000, 1_700_000_000);
  const edited = await digestSources(await collectSources(ctx, ['app']), c);
  expect(edited).not.toBe(plain);
  expect(edited).toBe(await digestSources(await collectSources(ctx, ['app'])));
});

it('answers known files without a hash (known), and not a same-size edit with its mtime reset', async () => {
  const f = path.join(ctx, 'src', 'known.txt');
  await fsp.writeFile(f, 'aaaa\n');
  await fsp.utimes(f, 1_600_000_000, 1_600_000_000);
  const c = cache('known');
  await c.ready();
  expect(c.known(f, await fsp.stat(f))).toBeUndefined();
  const first = await lookup(c, f, counter().hash);
  expect(c.known(f, await fsp.stat(f))).toBe(first);
  const before = await fsp.stat(f);
  await fsp.writeFile(f, 'bbbb\n');
  await fsp.utimes(f, 1_600_000_000, 1_600_000_000);
  const after = await fsp.stat(f);
  expect([after.size, after.mtimeMs]).toEqual([before.size, before.mtimeMs]);
  expect(c.known(f, after)).toBeUndefined();
  // digestSources takes what known answers and hashes only the rest
  const n = counter();
  const counting = { ready: () => c.ready(), known: (abs: string, st: import('node:fs').Stats) => c.known(abs, st), digest: (abs: string, st: import('node:fs').Stats, hash: () => Promise<string>) => c.digest(abs, st, () => (n.reads.push(path.basename(abs)), hash())) };
  const items = await collectSources(path.join(ctx, 'src'), ['known.txt']);
  await digestSources(items, counting);
  await digestSources(items, counting);
  expect(n.reads).toEqual(['known.txt']);
});

it('keeps one file per context, at most maxFiles of them (the ones written longest ago go), and removes the older layout\'s file', async () => {
  const root = path.join(dir, 'store');
  const legacy = path.join(root, 'cache', 'context-stat.json');
  await fsp.mkdir(path.dirname(legacy), { recursive: true });
  await fsp.writeFile(legacy, '{"version":1,"entries":{}}');
  const ctxs = ['c1', 'c2', 'c3'].map((n) => path.join(dir, n));
  const files = ctxs.map((c) => statCacheFile(root, c));
  expect(new Set(files).size).toBe(3);
  expect(statCacheFile(root, `${ctxs[0]}/`)).toBe(files[0]);
  for (const [i, c] of ctxs.entries()) {
    await fsp.mkdir(c, { recursive: true });
    await fsp.writeFile(path.join(c, 'f.txt'), c);
    const sc = new StatCache({ file: files[i]!, legacy, maxFiles: 2, tmpDir: path.join(dir, 'tmp'), roots: [c], now: () => Date.now() + 3_600_000 });
    await lookup(sc, path.join(c, 'f.txt'), counter().hash);
    await sc.save();
    // distinct mtimes for the bound
    const t = new Date(Date.now() - (10 - i) * 1000);
    await fsp.utimes(files[i]!, t, t);
  }
  const left = (await fsp.readdir(path.dirname(files[0]!))).sort();
  expect(left).toEqual([path.basename(files[1]!), path.basename(files[2]!)].sort());
  await expect(fsp.stat(legacy)).rejects.toThrow();
});
