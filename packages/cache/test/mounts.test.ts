/**
 * Exported cache mounts in the cache artifact (format 4): the spec flag, merging per mount key
 * (last writer wins, other mounts kept, ttl drops stale ones), import by key, and concurrent
 * exports to one registry ref that leave one whole export, never a mix.
 */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ImageStore, MediaType, type Descriptor } from '@hoist/oci';
import { RegistryClient } from '@hoist/registry-client';
import { startRegistry } from '@hoist/testkit';
import { LocalCacheSource, RegistryCacheSource, exportCacheToDir, exportCacheToRegistry, parseCacheSpec, readLocalCache, type CacheMountEntry } from '@hoist/cache';

const H = 3_600_000;

async function mount(store: ImageStore, key: string, contents: string[], lastUsed: string): Promise<CacheMountEntry> {
  const layers: Descriptor[] = [];
  for (const c of contents) layers.push(await store.blobs.putBytes(Buffer.from(c), MediaType.OciLayerGzip));
  return { key, layers, files: contents.length, bytes: contents.join('').length, lastUsed };
}

describe('cache mounts in the cache artifact', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hoist-cache-mounts-'));
  });
  afterAll(async () => fsp.rm(dir, { recursive: true, force: true }));

  it('cache-mounts=true|false is parsed on both flags; anything else is a usage error', () => {
    expect(parseCacheSpec('type=registry,ref=r.example/app:cache,cache-mounts=true', 'to')).toMatchObject({ cacheMounts: true });
    expect(parseCacheSpec('type=local,src=/tmp/c,cache-mounts=false', 'from')).toMatchObject({ cacheMounts: false });
    expect(parseCacheSpec('type=local,dest=/tmp/c', 'to').cacheMounts).toBeUndefined();
    expect(() => parseCacheSpec('type=local,dest=/tmp/c,cache-mounts=yes', 'to')).toThrow(/--cache-to cache-mounts must be true or false, not "yes"/);
  });

  it('an export replaces the mounts it carries, keeps the others, and ttl drops stale ones', async () => {
    const store = await ImageStore.open(path.join(dir, 'store'));
    const out = path.join(dir, 'local');
    const t0 = new Date('2026-11-01T00:00:00Z');
    const npm1 = await mount(store, '/root/.npm', ['npm-a', 'npm-b'], t0.toISOString());
    const apt = await mount(store, 'apt\0perm=0:0:755', ['apt-a'], t0.toISOString());
    await exportCacheToDir(store, { records: [], dir: out, mode: 'max', mounts: [npm1, apt], now: t0 });
    // another build, another npm cache, no apt: npm replaced whole, apt kept
    const t1 = new Date(t0.getTime() + 10 * H);
    const npm2 = await mount(store, '/root/.npm', ['npm-a', 'npm-c', 'npm-d'], t1.toISOString());
    await exportCacheToDir(store, { records: [], dir: out, mode: 'max', mounts: [npm2], now: t1 });
    const found = await readLocalCache(out);
    expect(found!.config.version).toBe(4);
    expect(found!.config.mounts!.map((m) => m.key)).toEqual(['/root/.npm', 'apt\0perm=0:0:755']);
    const src = await LocalCacheSource.load(await ImageStore.open(path.join(dir, 'other')), out);
    expect(src!.mountLayers('/root/.npm')!.layers.map((l) => l.digest)).toEqual(npm2.layers.map((l) => l.digest));
    expect(src!.mountLayers('apt\0perm=0:0:755')).toMatchObject({ files: 1 });
    expect(src!.mountLayers('/go/cache')).toBeUndefined();
    // every mount layer is in the manifest (the registry or directory keeps it)
    const listed = new Set(found!.manifest.layers.map((l) => l.digest));
    for (const l of [...npm2.layers, ...apt.layers]) expect(listed.has(l.digest)).toBe(true);
    expect(listed.has(npm1.layers[1]!.digest)).toBe(false);
    src!.ignoreMounts();
    expect(src!.mountLayers('/root/.npm')).toBeUndefined();

    // ttl 5h, 10h later: apt (refreshed at t0) goes, npm (refreshed at t1) stays
    await exportCacheToDir(store, { records: [], dir: out, mode: 'max', now: new Date(t1.getTime() + H), ttlMs: 5 * H });
    expect((await readLocalCache(out))!.config.mounts!.map((m) => m.key)).toEqual(['/root/.npm']);
  });

  it('two runners exporting to one ref at once leave one whole export, every layer present', async () => {
    const registry = await startRegistry();
    const client = new RegistryClient();
    try {
      const ref = `${registry.host}/app/cache:main`;
      const now = new Date();
      const runners = await Promise.all(
        ['a', 'b'].map(async (r) => {
          const store = await ImageStore.open(path.join(dir, `runner-${r}`));
          const m = await mount(store, '/root/.npm', Array.from({ length: 20 }, (_, i) => `${r}-chunk-${i}-`.repeat(1000)), now.toISOString());
          return { store, m };
        }),
      );
      await Promise.all(runners.map(({ store, m }) => exportCacheToRegistry(client, store, { records: [], ref, mode: 'max', mounts: [m], now })));
      const reader = await RegistryCacheSource.load(client, await ImageStore.open(path.join(dir, 'reader')), ref);
      const got = reader!.mountLayers('/root/.npm')!.layers.map((l) => l.digest);
      const options = runners.map(({ m }) => m.layers.map((l) => l.digest));
      expect(options).toContainEqual(got);
      for (const l of reader!.mountLayers('/root/.npm')!.layers) await reader!.fetchLayer(l, {});
    } finally {
      client.close();
      await registry.stop();
    }
  }, 60_000);
});
