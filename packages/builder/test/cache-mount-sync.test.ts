/**
 * Exported cache mounts (issue 13): a mount directory packed into content-addressed layers and
 * unpacked elsewhere is the same tree; one more file changes a few layers, not the cache.
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BlobStore } from '@hoist/oci';
import { chunkEntries, packCacheMount, unpackCacheMount } from '../src/cache-mount-sync.js';
import { CacheMounts, type MountSeeder } from '../src/cache-mounts.js';

async function tree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const e of await fsp.readdir(dir, { withFileTypes: true, recursive: true })) {
    const abs = path.join(e.parentPath, e.name);
    const rel = path.relative(dir, abs);
    const st = await fsp.lstat(abs);
    const what = e.isFile() ? createHash('sha256').update(await fsp.readFile(abs)).digest('hex') : e.isSymbolicLink() ? `-> ${await fsp.readlink(abs)}` : 'dir';
    out.set(rel, `${what} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}${e.isFile() ? ` ${Math.floor(st.mtimeMs / 1000)}` : ''}`);
  }
  return out;
}

/** A package cache: `count` files of `size` random bytes in two levels of directories. */
async function fill(dir: string, names: string[], size: number): Promise<void> {
  for (const n of names) {
    const f = path.join(dir, 'archives', n.slice(0, 1), `${n}.deb`);
    await fsp.mkdir(path.dirname(f), { recursive: true });
    await fsp.writeFile(f, randomBytes(size));
  }
}

describe('cache mount export layers', () => {
  let work: string;
  beforeAll(async () => {
    work = await fsp.mkdtemp(path.join(os.tmpdir(), 'hoist-cmsync-'));
  });
  afterAll(async () => {
    await fsp.rm(work, { recursive: true, force: true });
  });

  it('unpacks to the same tree (contents, modes, owners, file mtimes, symlinks, hard links as copies)', async () => {
    const src = path.join(work, 'src');
    await fill(src, ['apt', 'bash', 'curl'], 3000);
    await fsp.symlink('archives/a/apt.deb', path.join(src, 'latest'));
    await fsp.link(path.join(src, 'archives', 'b', 'bash.deb'), path.join(src, 'bash-again.deb'));
    await fsp.chmod(path.join(src, 'archives', 'c'), 0o700);
    await fsp.chown(path.join(src, 'archives', 'c', 'curl.deb'), 100, 101);
    await fsp.utimes(path.join(src, 'archives', 'a', 'apt.deb'), 1_000_000, 1_000_000);
    const blobs = new BlobStore(path.join(work, 'blobs'));
    const packed = await packCacheMount(src, blobs);
    expect(packed.files).toBe(5);
    expect(packed.bytes).toBe(4 * 3000); // three packages and the hard link's copy; a symlink holds no bytes
    const dest = path.join(work, 'dest');
    await fsp.mkdir(dest);
    await unpackCacheMount(dest, packed.layers, blobs);
    expect(await tree(dest)).toEqual(await tree(src));
    expect((await fsp.stat(path.join(dest, 'bash-again.deb'))).nlink).toBe(1);
  });

  it('packing the same tree twice gives the same layers; one more package changes at most two chunks', async () => {
    const src = path.join(work, 'cache');
    const names = Array.from({ length: 400 }, (_, i) => `pkg${String(i).padStart(4, '0')}`);
    await fill(src, names, 64 * 1024);
    const blobs = new BlobStore(path.join(work, 'blobs2'));
    const first = await packCacheMount(src, blobs);
    const again = await packCacheMount(src, blobs);
    expect(again.layers).toEqual(first.layers);
    const chunks = first.layers.length - 1;
    expect(chunks).toBeGreaterThanOrEqual(8); // 25 MiB: cut, not one blob

    await fill(src, ['pkg0200x'], 64 * 1024);
    const after = await packCacheMount(src, blobs);
    const before = new Set(first.layers.map((l) => l.digest));
    const fresh = after.layers.filter((l) => !before.has(l.digest));
    // the directories' layer is unchanged (no new directory); the new file lands in one chunk
    expect(after.layers[0]).toEqual(first.layers[0]);
    expect(fresh.length).toBeGreaterThanOrEqual(1);
    expect(fresh.length).toBeLessThanOrEqual(2);
    const freshBytes = fresh.reduce((a, l) => a + l.size, 0);
    const total = after.layers.reduce((a, l) => a + l.size, 0);
    expect(freshBytes / total).toBeLessThan(0.25);
  });

  it('cuts chunks at names, not positions: inserting an entry leaves the chunks after the next boundary alone', () => {
    const entries = Array.from({ length: 2000 }, (_, i) => ({ name: `f${i}`, bytes: 100 * 1024 }));
    const a = chunkEntries(entries).map((c) => c.map((e) => e.name).join(','));
    const b = chunkEntries([...entries.slice(0, 10), { name: 'inserted', bytes: 100 * 1024 }, ...entries.slice(10)]).map((c) => c.map((e) => e.name).join(','));
    const same = b.filter((c) => a.includes(c)).length;
    expect(a.length).toBeGreaterThan(20);
    expect(same).toBeGreaterThanOrEqual(a.length - 2);
  });

  describe('seeding a cache mount the store lacks', () => {
    /** A seeder that writes one file, counting calls; `gate` holds it until released. */
    function seeder(): MountSeeder & { calls: string[]; release(): void; halfway: Promise<void> } {
      let open!: () => void;
      const gate = new Promise<void>((r) => (open = r));
      let half!: () => void;
      const halfway = new Promise<void>((r) => (half = r));
      const calls: string[] = [];
      return {
        calls,
        halfway,
        release: () => open(),
        has: () => true,
        seed: async (key, dir) => {
          calls.push(key);
          if (key === 'unknown') return false;
          await fsp.writeFile(path.join(dir, 'pkg.deb'), 'seeded');
          half();
          await gate;
          await fsp.writeFile(path.join(dir, 'last.deb'), 'seeded too');
          return true;
        },
      };
    }
    const roots = async (name: string): Promise<[string, string]> => {
      const root = path.join(work, name);
      await fsp.mkdir(path.join(root, 'tmp'), { recursive: true });
      return [root, path.join(root, 'tmp')];
    };

    it('seeds once per build, all or nothing, with the mount\'s owner and mode; a present mount is never seeded', async () => {
      const s = seeder();
      const mounts = new CacheMounts(...(await roots('seed-once')), s);
      const first = mounts.acquire('/var/cache/apt', { sharing: 'shared', uid: 7, gid: 8, mode: 0o750 });
      const second = mounts.acquire('/var/cache/apt', { sharing: 'shared', uid: 7, gid: 8, mode: 0o750 });
      const dir = mounts.dirFor('/var/cache/apt');
      // while the seed is unpacking, the store has no half-seeded mount
      await s.halfway;
      expect(await fsp.readdir(dir).catch(() => 'absent')).toBe('absent');
      s.release();
      const [a, b] = await Promise.all([first, second]);
      expect(a.source).toBe(dir);
      expect(b.source).toBe(dir);
      expect((await fsp.readdir(dir)).sort()).toEqual(['last.deb', 'pkg.deb']);
      const st = await fsp.stat(dir);
      expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([7, 8, 0o750]);
      expect(s.calls).toEqual(['/var/cache/apt']);
      await a.release();
      await b.release();

      const again = new CacheMounts(...(await roots('seed-once')), s);
      await (await again.acquire('/var/cache/apt', { sharing: 'shared' })).release();
      expect(s.calls).toEqual(['/var/cache/apt']);
      expect([...again.used.keys()]).toEqual(['/var/cache/apt']);
    });

    it('a mount no imported cache has starts empty; sharing=private and locked keep their meaning on a seeded mount', async () => {
      const s = seeder();
      s.release();
      const mounts = new CacheMounts(...(await roots('seed-sharing')), s);
      const empty = await mounts.acquire('unknown', { sharing: 'shared' });
      expect(await fsp.readdir(empty.source)).toEqual([]);
      await empty.release();

      const held = await mounts.acquire('/root/.npm', { sharing: 'locked' });
      expect((await fsp.readdir(held.source)).sort()).toEqual(['last.deb', 'pkg.deb']);
      // private while another step holds it: a fresh empty directory, not the seed
      const priv = await mounts.acquire('/root/.npm', { sharing: 'private' });
      expect(priv.source).not.toBe(held.source);
      expect(await fsp.readdir(priv.source)).toEqual([]);
      await priv.release();
      // locked: the second user gets the directory only after the first released it
      const order: string[] = [];
      const waiting = mounts.acquire('/root/.npm', { sharing: 'locked' }).then((m) => {
        order.push('second acquired');
        return m;
      });
      await new Promise((r) => setTimeout(r, 50));
      order.push('first released');
      await held.release();
      await (await waiting).release();
      expect(order).toEqual(['first released', 'second acquired']);
      expect(s.calls).toEqual(['unknown', '/root/.npm']);
    });
  });
});
