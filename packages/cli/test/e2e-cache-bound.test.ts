/**
 * Registry caches that stay bounded: twenty ephemeral runners (a fresh store each) build with
 * changing sources, importing and exporting one cache ref with `mode=max,max-entries=N`. The
 * artifact keeps at most N records, every build hits its unchanged steps, the artifacts and
 * layers an export drops answer 404 through the API, and after the registry's offline garbage
 * collection its storage holds exactly the base image and the current artifact. Builds without
 * bounds leave orphans that `hoist cache prune` deletes; a registry that refuses deletes gets a
 * message naming its setting.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { isIndexMediaType, parseIndex, parseManifest, parseReference, type Digest } from '@hoist/oci';
import { RegistryClient } from '@hoist/registry-client';
import { hoist, startRegistry, storeWithBusybox, tempDir, type RunningRegistry } from '@hoist/testkit';

/** Layer steps of the Dockerfile, and those whose inputs change with `changing.txt`. */
const DOCKERFILE = ['COPY stable.txt /stable.txt', 'RUN cat /stable.txt > /derived', 'COPY changing.txt /changing.txt', 'RUN cat /changing.txt > /derived2'];
const STEPS = DOCKERFILE.length;
const CHANGING = DOCKERFILE.length - DOCKERFILE.findIndex((l) => l.includes('changing.txt'));
/** Keep this build's records and the previous build's changing ones. */
const MAX_ENTRIES = STEPS + CHANGING;
const BUILDS = 20;

/** Every blob data file of the registry's storage: digest -> bytes. */
async function storedBlobs(storageDir: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const root = path.join(storageDir, 'docker', 'registry', 'v2', 'blobs', 'sha256');
  for (const e of await fsp.readdir(root, { withFileTypes: true, recursive: true }).catch(() => [])) {
    if (!e.isFile() || e.name !== 'data') continue;
    const file = path.join(e.parentPath, e.name);
    out.set(`sha256:${path.basename(e.parentPath)}`, (await fsp.stat(file)).size);
  }
  return out;
}

async function folderBytes(dir: string): Promise<number> {
  let n = 0;
  for (const e of await fsp.readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) n += (await fsp.stat(path.join(e.parentPath, e.name))).size;
  return n;
}

/** A manifest (or index) at `ref` and every blob it uses: digests. */
async function closure(client: RegistryClient, ref: string): Promise<Set<string>> {
  const got = await client.getManifest(ref);
  const out = new Set<string>([got.descriptor.digest]);
  if (isIndexMediaType(got.descriptor.mediaType)) {
    const r = parseReference(ref);
    for (const c of parseIndex(got.raw).value.manifests) for (const d of await closure(client, `${r.registry}/${r.repository}@${c.digest}`)) out.add(d);
    return out;
  }
  const m = parseManifest(got.raw).value;
  for (const d of [m.config, ...m.layers]) out.add(d.digest);
  return out;
}

interface Artifact {
  digest: string;
  layers: Array<{ digest: Digest; size: number }>;
  records: Array<{ key: string; lastUsed?: string; layer?: { descriptor: { digest: string } } }>;
}

async function artifact(client: RegistryClient, ref: string): Promise<Artifact> {
  const got = await client.getManifest(ref);
  const m = parseManifest(got.raw).value;
  const cfg = JSON.parse((await client.fetchBlobBytes(ref, m.config)).toString()) as { records: Artifact['records'] };
  return { digest: got.descriptor.digest, layers: m.layers.map((l) => ({ digest: l.digest, size: l.size })), records: cfg.records };
}

describe('bounded registry cache', () => {
  let registry: RunningRegistry;
  let seed: string;
  let work: string;
  let base: string;
  let client: RegistryClient;

  beforeAll(async () => {
    [registry, seed, work] = await Promise.all([startRegistry(), storeWithBusybox(), tempDir('cache-bound')]);
    base = `${registry.host}/base/busybox:latest`;
    expect((await hoist(['push', '--root', seed, '--progress', 'quiet', 'busybox:latest', base])).code).toBe(0);
    client = new RegistryClient();
  }, 120_000);

  afterAll(async () => {
    client?.close();
    await registry?.stop();
    await fsp.rm(seed, { recursive: true, force: true });
    await fsp.rm(work, { recursive: true, force: true });
  });

  async function context(name: string, changing: string): Promise<string> {
    const ctx = path.join(work, name);
    await fsp.mkdir(ctx, { recursive: true });
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), [`FROM ${base}`, ...DOCKERFILE, ''].join('\n'));
    await fsp.writeFile(path.join(ctx, 'stable.txt'), 'stable\n');
    await fsp.writeFile(path.join(ctx, 'changing.txt'), `${changing}\n`);
    return ctx;
  }

  /** One ephemeral runner: a fresh store, one build. */
  const runner = (name: string, ctx: string, args: string[]) => hoist(['build', '--root', path.join(work, `root-${name}`), '--progress', 'plain', ...args, '-t', 'app:ci', ctx]);

  it(`twenty builds with max-entries=${MAX_ENTRIES} keep the artifact and the registry storage bounded, each hitting its unchanged steps`, async () => {
    const ref = `${registry.host}/app/cache:bounded`;
    const cacheArgs = ['--cache-from', `type=registry,ref=${ref}`, '--cache-to', `type=registry,ref=${ref},mode=max,max-entries=${MAX_ENTRIES}`];
    const baseBlobs = await closure(client, base);
    const afterGc: number[] = [];
    let previous: Artifact | undefined;
    for (let i = 0; i < BUILDS; i++) {
      const r = await runner(`b${i}`, await context(`ctx-b${i}`, `build ${i}`), cacheArgs);
      expect([i, r.code, r.stderr.slice(-600)]).toEqual([i, 0, expect.any(String)]);
      // the first build runs everything; every later one hits the steps before changing.txt
      expect([i, r.stderr.match(/\((\d+) steps run, (\d+) cached\)/)?.slice(1)]).toEqual([i, i === 0 ? [String(STEPS), '0'] : [String(CHANGING), String(STEPS - CHANGING)]]);
      const now = await artifact(client, ref);
      expect([i, now.records.length]).toEqual([i, Math.min(MAX_ENTRIES, STEPS + i * CHANGING)]);
      if (previous) {
        // the replaced artifact and the layers only it used are gone (API level)
        expect([i, await client.headManifest(`${registry.host}/app/cache@${previous.digest}`)]).toEqual([i, undefined]);
        const kept = new Set(now.layers.map((l) => l.digest));
        for (const l of previous.layers.filter((x) => !kept.has(x.digest))) expect([i, l.digest, await client.hasBlob(ref, l)]).toEqual([i, l.digest, false]);
      }
      previous = now;
      if (i === 9 || i === BUILDS - 1) {
        const before = await folderBytes(registry.storageDir);
        await registry.garbageCollect();
        // exactly the base image and the current artifact (manifest, config, a layer per record) are stored
        const stored = await storedBlobs(registry.storageDir);
        const expected = new Set([...baseBlobs, ...(await closure(client, ref))]);
        expect([i, [...stored.keys()].sort()]).toEqual([i, [...expected].sort()]);
        expect(stored.size).toBe(baseBlobs.size + 2 + MAX_ENTRIES);
        afterGc.push(await folderBytes(registry.storageDir));
        process.stderr.write(`registry storage after build ${i + 1}: ${before} bytes before GC, ${afterGc.at(-1)} after (${stored.size} blobs)\n`);
      }
    }
    // the same blobs of the same kind after 10 and after 20 builds: the storage does not grow
    // with the build count (layers differ by a character of changing.txt; 1 KiB of slack)
    expect(afterGc[1]!).toBeLessThanOrEqual(afterGc[0]! + 1024);
  }, 900_000);

  it('hoist cache du shows the orphans of unbounded builds; hoist cache prune deletes them, then --keep drops old entries', async () => {
    const ref = `${registry.host}/app/cache:unbounded`;
    const repo = `${registry.host}/app/cache`;
    const digests: string[] = [];
    const N = 5;
    for (let i = 0; i < N; i++) {
      const r = await runner(`u${i}`, await context(`ctx-u${i}`, `unbounded ${i}`), ['--cache-from', `type=registry,ref=${ref}`, '--cache-to', `type=registry,ref=${ref},mode=max`]);
      expect(r.code).toBe(0);
      digests.push((await artifact(client, ref)).digest);
    }
    // without bounds every record stays and every replaced artifact is still in the registry
    const last = await artifact(client, ref);
    expect(last.records.length).toBe(STEPS + (N - 1) * CHANGING);
    for (const d of digests.slice(0, -1)) expect(await client.headManifest(`${repo}@${d}`)).toBeDefined();

    const du = await hoist(['cache', 'du', '--registry', ref, '--json']);
    expect(du.code).toBe(0);
    const usage = JSON.parse(du.stdout) as { records: number; bytes: number; orphans: { count: number }; version: number; newestUse: string; oldestUse: string };
    expect(usage).toMatchObject({ records: last.records.length, orphans: { count: N - 1 }, version: 4 });
    const got = await client.getManifest(ref);
    const m = parseManifest(got.raw).value;
    expect(usage.bytes).toBe(got.raw.length + m.config.size + m.layers.reduce((a, l) => a + l.size, 0));
    expect(Date.parse(usage.newestUse)).toBeGreaterThanOrEqual(Date.parse(usage.oldestUse));
    const text = await hoist(['cache', 'du', '--registry', ref]);
    expect(text.stdout).toMatch(new RegExp(`^entries\\s+${last.records.length}$`, 'm'));

    const storedBefore = await storedBlobs(registry.storageDir);
    const prune = await hoist(['cache', 'prune', '--registry', ref, '--json']);
    expect([prune.code, prune.stderr]).toEqual([0, '']);
    const report = JSON.parse(prune.stdout) as { entries: number; dropped: number; deletedManifests: number; deletedBlobs: number };
    // each replaced artifact goes with its config (its layers are all still in the current one)
    expect(report).toMatchObject({ entries: last.records.length, dropped: 0, deletedManifests: N - 1, deletedBlobs: N - 1 });
    for (const d of digests.slice(0, -1)) expect(await client.headManifest(`${repo}@${d}`)).toBeUndefined();
    expect(await client.headManifest(ref)).toMatchObject({ digest: last.digest });
    expect(JSON.parse((await hoist(['cache', 'du', '--registry', ref, '--json'])).stdout)).toMatchObject({ orphans: { count: 0, bytes: 0 } });

    // --keep: the newest build's records stay, the oldest builds' changing layers go (404)
    const keep = await hoist(['cache', 'prune', '--registry', ref, '--keep', String(STEPS), '--json']);
    expect(keep.code).toBe(0);
    expect(JSON.parse(keep.stdout)).toMatchObject({ entries: STEPS, dropped: (N - 1) * CHANGING, deletedManifests: 1 });
    const kept = await artifact(client, ref);
    expect(kept.records.length).toBe(STEPS);
    const keptLayers = new Set(kept.layers.map((l) => l.digest));
    for (const l of last.layers) expect([l.digest, await client.hasBlob(ref, l)]).toEqual([l.digest, keptLayers.has(l.digest)]);
    // the newest build still hits everything from the pruned cache
    const again = await runner('u-again', path.join(work, `ctx-u${N - 1}`), ['--cache-from', `type=registry,ref=${ref}`]);
    expect(again.stderr).toContain(`(0 steps run, ${STEPS} cached)`);

    // garbage collection frees what the deletes unlinked: the storage shrinks
    await registry.garbageCollect();
    const storedAfter = await storedBlobs(registry.storageDir);
    const sum = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);
    process.stderr.write(`prune + GC: ${storedBefore.size} blobs (${sum(storedBefore)} bytes) -> ${storedAfter.size} (${sum(storedAfter)} bytes)\n`);
    expect(storedAfter.size).toBeLessThan(storedBefore.size);
    for (const d of digests.slice(0, -1)) expect(storedAfter.has(d)).toBe(false);
  }, 600_000);

  it('a registry that refuses deletes: the bounded export succeeds with a warning, prune fails naming storage.delete.enabled', async () => {
    const locked = await startRegistry({ deleteEnabled: false });
    try {
      const ref = `${locked.host}/app/cache:locked`;
      const lockedBase = `${locked.host}/base/busybox:latest`;
      expect((await hoist(['push', '--root', seed, '--progress', 'quiet', 'busybox:latest', lockedBase])).code).toBe(0);
      const ctx = await context('ctx-locked', 'locked');
      await fsp.writeFile(path.join(ctx, 'Dockerfile'), [`FROM ${lockedBase}`, ...DOCKERFILE, ''].join('\n'));
      const args = ['--cache-to', `type=registry,ref=${ref},mode=max,max-entries=${STEPS}`];
      expect((await runner('locked-1', ctx, args)).code).toBe(0);
      await fsp.writeFile(path.join(ctx, 'changing.txt'), 'locked 2\n');
      const second = await runner('locked-2', ctx, args);
      expect(second.code).toBe(0);
      expect(second.stderr).toMatch(/WARNING: could not delete the cache artifacts .*cache:locked replaced: .*refuses to delete manifest sha256:[0-9a-f]{64} .*storage\.delete\.enabled: true/);
      expect((await artifact(client, ref)).records.length).toBe(STEPS);
      const prune = await hoist(['cache', 'prune', '--registry', ref]);
      expect(prune.code).toBe(1);
      expect(prune.stderr).toMatch(/^ERROR: .*refuses to delete manifest .*HTTP 405.*storage\.delete\.enabled: true/m);
      expect(prune.stderr).not.toMatch(/\n\s+at /);
    } finally {
      await locked.stop();
    }
  }, 300_000);

  it('a local cache directory: du counts the blobs earlier exports left, prune removes them, a bounded export leaves none', async () => {
    const dir = path.join(work, 'local-cache');
    const args = ['--cache-from', `type=local,src=${dir}`, '--cache-to', `type=local,dest=${dir},mode=max`];
    for (let i = 0; i < 2; i++) expect((await runner(`l${i}`, await context(`ctx-l${i}`, `local ${i}`), args)).code).toBe(0);
    const du = JSON.parse((await hoist(['cache', 'du', '--local', dir, '--json'])).stdout) as { records: number; orphans: { count: number } };
    // the first export's config and manifest (the second build hit the unchanged steps, so their layers are shared)
    expect(du).toMatchObject({ records: STEPS + CHANGING, orphans: { count: 2 } });
    const prune = await hoist(['cache', 'prune', '--local', dir, '--json']);
    expect(JSON.parse(prune.stdout)).toMatchObject({ entries: STEPS + CHANGING, dropped: 0, deletedBlobs: 2 });
    const bounded = await runner('l2', await context('ctx-l2', 'local 2'), ['--cache-from', `type=local,src=${dir}`, '--cache-to', `type=local,dest=${dir},mode=max,max-entries=${STEPS}`]);
    expect(bounded.stderr).toMatch(new RegExp(`exported cache \\(${STEPS} records, mode=max, max-entries=${STEPS}\\) to .*; ${2 * CHANGING} records dropped, ${2 * CHANGING + 2} blobs deleted`));
    expect(JSON.parse((await hoist(['cache', 'du', '--local', dir, '--json'])).stdout)).toMatchObject({ records: STEPS, orphans: { count: 0 } });
  }, 300_000);

  it('cache du/prune without a cache named, or with a bad --older-than, is a usage error', async () => {
    const none = await hoist(['cache', 'du']);
    expect([none.code, none.stderr]).toEqual([2, expect.stringMatching(/hoist cache du: which cache\? Give --registry REF .* or --local DIR/)]);
    const bad = await hoist(['cache', 'prune', '--local', work, '--older-than', '7 days']);
    expect([bad.code, bad.stderr]).toEqual([2, expect.stringMatching(/--older-than "7 days" is not a duration/)]);
    const missing = await hoist(['cache', 'du', '--registry', `${registry.host}/app/cache:nothing`]);
    expect([missing.code, missing.stderr]).toEqual([1, expect.stringMatching(/cache:nothing: no build cache there/)]);
  });
});
