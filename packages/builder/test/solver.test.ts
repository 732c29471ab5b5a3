/**
 * The solver with fakes at its seams (in the style of BuildKit's scheduler_test.go): a fake
 * executor that records calls and writes a file per RUN, an in-memory cache store that counts
 * lookups, a fake image source. Real store and snapshotter below (a layer still has to be
 * committed), no runtime, no network. Every assertion is about counts and event order.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { ImageStore, MediaType, StoreLayer, appendLayer, emptyImage, sha256, writeImage, type BlobStore, type CacheRecord, type Platform } from '@hoist/oci';
import { Snapshotter, encodeHeader } from '@hoist/snapshotter';
import { tempDir } from '@hoist/testkit';
import { build, type BuildEvent, type BuildOptions, type BuildResult, type ImageSource } from '@hoist/builder';
import { FakeExecutor, FakeImageSource, MemoryCacheStore } from '../src/testing/index.js';

const platform: Platform = { os: 'linux', architecture: 'amd64' };

interface World {
  root: string;
  context: string;
  cache: MemoryCacheStore;
  images: FakeImageSource;
  build(executor: FakeExecutor, extra?: { jobs?: number; buildArgs?: Record<string, string>; progress?: (ev: BuildEvent) => void }): Promise<BuildResult & { events: BuildEvent[] }>;
}

let root: string;
let n = 0;

beforeAll(async () => {
  root = await tempDir('solver');
});

afterAll(async () => {
  if (root) await fsp.rm(root, { recursive: true, force: true });
});

async function world(dockerfile: string, files: Record<string, string>): Promise<World> {
  const dir = path.join(root, String(++n));
  const store = await ImageStore.open(path.join(dir, 'oci'));
  const snapshotter = await Snapshotter.open({ root: path.join(dir, 'snapshots'), blobs: store.blobs });
  const context = path.join(dir, 'ctx');
  await fsp.mkdir(context, { recursive: true });
  for (const [p, text] of Object.entries(files)) await fsp.writeFile(path.join(context, p), text);
  const cache = new MemoryCacheStore();
  const images = new FakeImageSource(store);
  return {
    root: dir,
    context,
    cache,
    images,
    build: async (executor, extra = {}) => {
      const events: BuildEvent[] = [];
      cache.resetCounts();
      const r = await build({
        store,
        snapshotter,
        images,
        executor,
        cache,
        root: dir,
        contextDir: context,
        dockerfile: { path: 'Dockerfile', text: dockerfile },
        platform,
        network: 'none',
        jobs: extra.jobs ?? 2,
        ...(extra.buildArgs ? { buildArgs: extra.buildArgs } : {}),
        sourceDateEpoch: 0,
        progress: (ev) => {
          events.push(ev);
          extra.progress?.(ev);
        },
      });
      return { ...r, events };
    },
  };
}

const LINEAR = ['FROM scratch', 'COPY a.txt /a.txt', 'RUN echo one', 'COPY b.txt /b.txt', 'RUN echo two', ''].join('\n');

const DIAMOND = [
  'FROM scratch AS a',
  'COPY a.txt /a.txt',
  'RUN echo a',
  'FROM scratch AS b',
  'COPY b.txt /b.txt',
  'RUN echo b',
  'FROM scratch',
  'COPY --from=a /a.txt /a.txt',
  'COPY --from=b /b.txt /b.txt',
  'RUN echo final',
  '',
].join('\n');

describe('solver', () => {
  it('runs each RUN once on a cold cache and records one key per layer step', async () => {
    const w = await world(LINEAR, { 'a.txt': 'a\n', 'b.txt': 'b\n' });
    const ex = new FakeExecutor();
    const r = await w.build(ex);
    expect(ex.commands).toEqual(['echo one', 'echo two']);
    expect(r.stats).toMatchObject({ executed: 4, cached: 0, runSteps: 2 });
    expect(w.cache.writes).toHaveLength(4);
    expect(new Set(w.cache.writes).size).toBe(4);
  });

  it("a RUN that will execute has its sandbox prepared while the steps before it run; cached RUNs none", async () => {
    /** Logs `prepare` (a RUN's sandbox preparation starting) in one sequence with the step events. */
    class Preparing extends FakeExecutor {
      constructor(readonly log: string[]) {
        super();
      }
      prepare(): Promise<void> {
        this.log.push('prepare');
        return Promise.resolve();
      }
    }
    const w = await world(LINEAR, { 'a.txt': 'a\n', 'b.txt': 'b\n' });
    const log: string[] = [];
    const progress = (ev: BuildEvent): void => {
      if (ev.type === 'step' && (ev.status === 'start' || ev.status === 'done')) log.push(`${ev.status} ${ev.label.replace(/^.*\] /, '')}`);
    };
    await w.build(new Preparing(log), { progress });
    // RUN one's sandbox is prepared before its COPY starts; RUN two's as RUN one starts
    expect(log).toEqual([
      'prepare',
      'start COPY a.txt /a.txt',
      'done COPY a.txt /a.txt',
      'prepare',
      'start RUN echo one',
      'done RUN echo one',
      'start COPY b.txt /b.txt',
      'done COPY b.txt /b.txt',
      'start RUN echo two',
      'done RUN echo two',
    ]);
    log.length = 0;
    await w.build(new Preparing(log), { progress });
    expect(log.filter((l) => l === 'prepare')).toEqual([]);
    await fsp.writeFile(path.join(w.context, 'b.txt'), 'b2\n');
    log.length = 0;
    await w.build(new Preparing(log), { progress });
    // the cached steps start (and are shown CACHED); only RUN two is prepared, before its COPY
    expect(log).toEqual(['prepare', 'start COPY a.txt /a.txt', 'start RUN echo one', 'start COPY b.txt /b.txt', 'done COPY b.txt /b.txt', 'start RUN echo two', 'done RUN echo two']);
  });

  it('a fully cached build executes 0 ops and writes no record', async () => {
    const w = await world(LINEAR, { 'a.txt': 'a\n', 'b.txt': 'b\n' });
    const first = await w.build(new FakeExecutor());
    const ex = new FakeExecutor();
    const r = await w.build(ex);
    expect(ex.events).toEqual([]);
    expect(r.stats).toMatchObject({ executed: 0, cached: 4, runSteps: 0 });
    expect(w.cache.writes).toEqual([]);
    // one lookup per layer step, in pass 1: pass 2 walks the same ops and needs none for a hit
    expect(w.cache.lookups).toEqual(first.cacheRecords.max.map((rec) => rec.key));
    expect(r.descriptor.digest).toBe(first.descriptor.digest);
  });

  it('a changed context file re-executes exactly the steps that depend on it', async () => {
    const w = await world(DIAMOND, { 'a.txt': 'a\n', 'b.txt': 'b\n' });
    await w.build(new FakeExecutor());
    await fsp.writeFile(path.join(w.context, 'b.txt'), 'b2\n');
    const ex = new FakeExecutor();
    const r = await w.build(ex);
    expect(ex.commands).toEqual(['echo b', 'echo final']);
    // COPY b.txt, RUN echo b, COPY --from=b, RUN echo final; stage a is not even walked in pass 2
    expect(r.stats).toMatchObject({ executed: 4, runSteps: 2 });
    const started = r.events.filter((e): e is Extract<BuildEvent, { type: 'step' }> => e.type === 'step' && e.status === 'start').map((e) => e.label);
    expect(started.filter((l) => l.startsWith('[a '))).toEqual([]);
    expect(w.cache.writes).toHaveLength(4);
    // 7 lookups in pass 1 (every layer step); pass 2 looks again only for the 4 misses
    expect(w.cache.lookups).toHaveLength(7 + 4);
  });

  it('two independent stages overlap: both RUNs start before either ends', async () => {
    const w = await world(DIAMOND, { 'a.txt': 'a\n', 'b.txt': 'b\n' });
    const ex = new FakeExecutor({ overlap: 2 });
    await w.build(ex, { jobs: 2 });
    expect(ex.events.slice(0, 2).map((e) => e.type)).toEqual(['start', 'start']);
    expect(new Set(ex.events.slice(0, 2).map((e) => e.command))).toEqual(new Set(['echo a', 'echo b']));
    expect(ex.events.at(-1)).toEqual({ type: 'end', command: 'echo final' });
  });

  it('with --jobs 1 the runs never overlap', async () => {
    const w = await world(DIAMOND, { 'a.txt': 'a\n', 'b.txt': 'b\n' });
    const ex = new FakeExecutor();
    await w.build(ex, { jobs: 1 });
    expect(ex.events.map((e) => e.type)).toEqual(['start', 'end', 'start', 'end', 'start', 'end']);
  });

  it('a failing RUN names its step and line, and records nothing for it', async () => {
    const w = await world('FROM scratch\nRUN echo ok\nRUN exit 3\n', {});
    const ex = new FakeExecutor();
    await expect(w.build(ex)).rejects.toMatchObject({ code: 'STEP_FAILED', exitCode: 3, location: { line: 3 } });
    expect(ex.commands).toEqual(['echo ok', 'exit 3']);
    expect(w.cache.writes).toHaveLength(1);
  });

  it('proxy build args reach every RUN without an ARG (Plan.proxyArgs) and never enter a key', async () => {
    const w = await world('FROM scratch\nENV no_proxy=from-env\nRUN echo one\n', {});
    const ex = new FakeExecutor();
    await w.build(ex, { buildArgs: { HTTPS_PROXY: 'http://proxy:3128', no_proxy: 'from-arg' } });
    expect(ex.processes[0]!.env).toContain('HTTPS_PROXY=http://proxy:3128');
    // ENV wins over a build arg of the same name, as for every other build arg
    expect(ex.processes[0]!.env.filter((e) => e.startsWith('no_proxy='))).toEqual(['no_proxy=from-env']);
    const other = new FakeExecutor();
    const r = await w.build(other, { buildArgs: { HTTPS_PROXY: 'http://elsewhere:8080' } });
    expect(other.events).toEqual([]);
    expect(r.stats.cached).toBe(1);
  });

  it('RUN --mount from=01 names stage 1, by the planner\'s rule (not an image called "01")', async () => {
    const df = ['FROM scratch AS zero', 'COPY a.txt /a.txt', 'FROM scratch AS one', 'COPY b.txt /b.txt', 'FROM scratch', 'RUN --mount=type=bind,from=01,target=/m echo mounted', ''].join('\n');
    const w = await world(df, { 'a.txt': 'a\n', 'b.txt': 'b\n' });
    const ex = new FakeExecutor();
    const r = await w.build(ex);
    expect(w.images.resolved).toEqual([]);
    expect(ex.mountTargets[0]).toContain('/m');
    // stage 1 ran for the mount (its COPY), stage 0 was never needed
    expect(r.stats).toMatchObject({ executed: 2, runSteps: 1 });
  });

  it('step labels count only the steps the progress shows (ENV, LABEL, CMD are not counted), as BuildKit', async () => {
    const df = ['FROM scratch', 'ENV A=1', 'LABEL x=y', 'COPY a.txt /a.txt', 'ENV B=2', 'RUN echo one', 'CMD ["x"]', ''].join('\n');
    const w = await world(df, { 'a.txt': 'a\n' });
    const r = await w.build(new FakeExecutor());
    const started = r.events.flatMap((e) => (e.type === 'step' && e.status === 'start' ? [e.label] : []));
    expect(started).toEqual(['[stage-0 1/2] COPY a.txt /a.txt', '[stage-0 2/2] RUN echo one']);
  });
});

/** A layer whose blob is in another store (a registry, as far as the build can tell), counting its transfers. */
class CountingLayer extends StoreLayer {
  fetched = 0;
  override async fetchInto(blobs: BlobStore, opts?: { signal?: AbortSignal }): Promise<'exists' | 'fetched'> {
    const r = await super.fetchInto(blobs, opts);
    if (r === 'fetched') this.fetched++;
    return r;
  }
}

/** A base image `base:1` whose one layer (a file /base.txt) is elsewhere, reached only through its Layer. */
async function remoteBase(): Promise<{ images: ImageSource; layer: () => CountingLayer | undefined }> {
  const remote = await ImageStore.open(path.join(root, `remote-${++n}`));
  const data = Buffer.from('base\n');
  const tar = Buffer.concat([encodeHeader({ name: 'base.txt', type: 'file', mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: 0 }), data, Buffer.alloc(512 - data.length), Buffer.alloc(1024)]);
  const desc = await remote.blobs.putBytes(gzipSync(tar), MediaType.OciLayerGzip);
  const w = await writeImage(remote.blobs, appendLayer(emptyImage(platform), desc, sha256(tar), { created_by: 'base' }));
  let made: CountingLayer | undefined;
  const images: ImageSource = {
    resolve: async (ref) => {
      const img = await remote.load(w.descriptor, platform);
      made ??= new CountingLayer(remote.blobs, desc, sha256(tar));
      return { ref, descriptor: img.descriptor, manifest: img.manifest, config: img.config, layers: [made] };
    },
  };
  return { images, layer: () => made };
}

describe('base image layers', () => {
  it('are fetched through their Layer once, when a step runs on them; a fully cached build fetches none', async () => {
    const w = await world('FROM base:1\nRUN echo on-base\n', {});
    const base = await remoteBase();
    const store = await ImageStore.open(path.join(w.root, 'oci'));
    const snapshotter = await Snapshotter.open({ root: path.join(w.root, 'snapshots'), blobs: store.blobs });
    const opts = { store, snapshotter, images: base.images, cache: w.cache, root: w.root, contextDir: w.context, dockerfile: { path: 'Dockerfile', text: 'FROM base:1\nRUN echo on-base\n' }, platform, network: 'none' as const, sourceDateEpoch: 0 };
    const first = await build({ ...opts, executor: new FakeExecutor() });
    expect(first.stats.executed).toBe(1);
    expect(base.layer()!.fetched).toBe(1);
    expect(first.layers.map((l) => l.origin.kind)).toEqual(['store', 'store']);
    const again = await build({ ...opts, executor: new FakeExecutor() });
    expect(again.stats.executed).toBe(0);
    expect(base.layer()!.fetched).toBe(1);
  });
});

/** A cache store whose writes wait for `gate` (or fail), noting when each write finished. */
class GatedCache extends MemoryCacheStore {
  readonly order: string[];
  constructor(
    private readonly gate: () => Promise<void>,
    order: string[],
    private readonly fail = false,
  ) {
    super();
    this.order = order;
  }

  override async put(rec: CacheRecord): Promise<void> {
    await this.gate();
    if (this.fail) throw new Error('disk full (test)');
    await super.put(rec);
    this.order.push(`written ${rec.key.slice(0, 8)}`);
  }
}

describe('cache records of executed steps (issue 16: written off the critical path)', () => {
  async function setup(dockerfile: string): Promise<{ opts: Omit<BuildOptions, 'cache' | 'executor'>; store: ImageStore }> {
    const w = await world(dockerfile, {});
    const store = await ImageStore.open(path.join(w.root, 'oci'));
    const snapshotter = await Snapshotter.open({ root: path.join(w.root, 'snapshots'), blobs: store.blobs });
    return { store, opts: { store, snapshotter, images: w.images, root: w.root, contextDir: w.context, dockerfile: { path: 'Dockerfile', text: dockerfile }, platform, network: 'none', sourceDateEpoch: 0, tags: ['gated:1'] } };
  }

  it('the next step runs while a record is written; every record is written when the build returns', async () => {
    const { opts, store } = await setup('FROM scratch\nRUN echo one\nRUN echo two\n');
    const order: string[] = [];
    const executor = new FakeExecutor();
    // a write waits until the second RUN has started (or, were writes awaited in line, a 2 s
    // fallback so that the test fails on the order below instead of hanging)
    const secondStarted = async (): Promise<void> => {
      for (let i = 0; i < 400 && executor.commands.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
    };
    const cache = new GatedCache(async () => {
      await secondStarted();
      order.push(`gate open, runs started: ${executor.commands.length}`);
    }, order);
    const r = await build({ ...opts, cache, executor });
    expect(executor.commands).toEqual(['echo one', 'echo two']);
    expect(order[0]).toBe('gate open, runs started: 2');
    expect(cache.records.size).toBe(2);
    expect(r.tags).toHaveLength(1);
    expect(await store.resolve('gated:1')).toBeDefined();
  });

  it('a record that cannot be written fails the build before the image is tagged', async () => {
    const { opts, store } = await setup('FROM scratch\nRUN echo one\n');
    const cache = new GatedCache(async () => undefined, [], true);
    await expect(build({ ...opts, cache, executor: new FakeExecutor() })).rejects.toThrow('disk full (test)');
    expect(await store.resolve('gated:1')).toBeUndefined();
  });
});

describe('a snapshotter still opening (issue 16)', () => {
  it('the base images resolve meanwhile; the build then runs on it as usual', async () => {
    const w = await world('FROM base:1\nRUN echo on-base\n', {});
    const base = await remoteBase();
    const store = await ImageStore.open(path.join(w.root, 'oci'));
    const order: string[] = [];
    let resolveStarted: () => void = () => undefined;
    const started = new Promise<void>((r) => (resolveStarted = r));
    const images: ImageSource = {
      resolve: async (ref, o) => {
        order.push(`resolve ${ref}`);
        resolveStarted();
        return base.images.resolve(ref, o);
      },
    };
    // opens once a base is being resolved (or after 2 s, were it awaited first: the order then fails)
    const snapshotter = Promise.race([started, new Promise((r) => setTimeout(r, 2000))]).then(async () => {
      const s = await Snapshotter.open({ root: path.join(w.root, 'snapshots'), blobs: store.blobs });
      order.push('snapshotter open');
      return s;
    });
    const events: BuildEvent[] = [];
    const r = await build({ store, snapshotter, images, cache: w.cache, executor: new FakeExecutor(), root: w.root, contextDir: w.context, dockerfile: { path: 'Dockerfile', text: 'FROM base:1\nRUN echo on-base\n' }, platform, network: 'none', sourceDateEpoch: 0, progress: (ev) => events.push(ev) });
    expect(order).toEqual(['resolve base:1', 'snapshotter open']);
    expect(r.stats.executed).toBe(1);
    expect(events.find((e) => e.type === 'info')).toMatchObject({ message: expect.stringContaining('snapshots: overlay') });
  });
});
