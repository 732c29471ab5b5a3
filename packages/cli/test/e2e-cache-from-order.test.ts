/**
 * Several `--cache-from` in order, as CI configures them (the branch's cache, then main's): a
 * step is taken from the first cache that has its key, each cache serves the steps only it has,
 * and `--explain-cache` compares a miss with the steps of every imported cache.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { parseManifest } from '@hoist/oci';
import { RegistryClient } from '@hoist/registry-client';
import { hoist, startRegistry, storeWithBusybox, tempDir, type RunningRegistry } from '@hoist/testkit';

describe('several --cache-from', () => {
  let registry: RunningRegistry;
  let seed: string;
  let work: string;
  let base: string;
  let client: RegistryClient;
  const ref = (tag: string): string => `${registry.host}/app/cache:${tag}`;
  const from = (...tags: string[]): string[] => tags.flatMap((t) => ['--cache-from', `type=registry,ref=${ref(t)}`]);
  let runners = 0;

  /** A fresh store (an ephemeral CI runner) building `src.txt` = `src`. */
  async function build(src: string, args: string[], dockerfile?: string[]): Promise<{ code: number | null; stderr: string; root: string }> {
    const n = runners++;
    const ctx = path.join(work, `ctx-${n}`);
    await fsp.mkdir(ctx, { recursive: true });
    // the RUN writes random bytes: two runners building the same step get different layers
    const lines = dockerfile ?? ['COPY src.txt /src.txt', 'RUN cat /src.txt > /out && head -c 16 /dev/urandom > /stamp'];
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), [`FROM ${base}`, ...lines, ''].join('\n'));
    await fsp.writeFile(path.join(ctx, 'src.txt'), `${src}\n`);
    const root = path.join(work, `root-${n}`);
    const r = await hoist(['build', '--root', root, '--progress', 'plain', ...args, '-t', 'app:ci', ctx]);
    return { code: r.code, stderr: r.stderr, root };
  }

  const counts = (stderr: string): string | undefined => /\((\d+ steps run, \d+ cached)\)/.exec(stderr)?.[1];

  async function imageLayers(root: string): Promise<string[]> {
    const r = await hoist(['inspect', '--root', root, 'app:ci']);
    return (JSON.parse(r.stdout) as { manifest: { layers: Array<{ digest: string }> } }).manifest.layers.map((l) => l.digest);
  }
  const lastLayer = async (root: string): Promise<string> => (await imageLayers(root)).at(-1)!;

  async function layersOf(tag: string): Promise<Set<string>> {
    return new Set(parseManifest((await client.getManifest(ref(tag))).raw).value.layers.map((l) => l.digest));
  }

  beforeAll(async () => {
    [registry, seed, work] = await Promise.all([startRegistry(), storeWithBusybox(), tempDir('cache-order')]);
    base = `${registry.host}/base/busybox:latest`;
    expect((await hoist(['push', '--root', seed, '--progress', 'quiet', 'busybox:latest', base])).code).toBe(0);
    client = new RegistryClient();
    // main's cache (v1), another runner's cache of the same steps (v1, other RUN layer), and the
    // branch's cache (v2, built on main's)
    const to = (tag: string): string[] => ['--cache-to', `type=registry,ref=${ref(tag)},mode=max`];
    for (const [src, args] of [
      ['v1', to('main')],
      ['v1', to('other')],
      ['v2', [...from('main'), ...to('branch')]],
    ] as const) {
      expect((await build(src, [...args])).code).toBe(0);
    }
  }, 300_000);

  afterAll(async () => {
    client?.close();
    await registry?.stop();
    await fsp.rm(seed, { recursive: true, force: true });
    await fsp.rm(work, { recursive: true, force: true });
  });

  it('the branch cache serves the branch version and main the main version; main alone reruns the branch', async () => {
    const branch = await build('v2', from('branch', 'main'));
    expect([branch.code, counts(branch.stderr)]).toEqual([0, '0 steps run, 2 cached']);
    const mainVersion = await build('v1', from('branch', 'main'));
    expect([mainVersion.code, counts(mainVersion.stderr)]).toEqual([0, '0 steps run, 2 cached']);
    expect((await layersOf('branch')).has(await lastLayer(branch.root))).toBe(true);
    expect((await layersOf('main')).has(await lastLayer(mainVersion.root))).toBe(true);
    const control = await build('v2', from('main'));
    expect([control.code, counts(control.stderr)]).toEqual([0, '2 steps run, 0 cached']);
  }, 300_000);

  it('when two caches have the same steps, the first given wins', async () => {
    const [main, other] = [await layersOf('main'), await layersOf('other')];
    // the same keys on both runners, another RUN layer (random bytes)
    const keys = async (tag: string): Promise<string[]> => {
      const m = parseManifest((await client.getManifest(ref(tag))).raw).value;
      return (JSON.parse((await client.fetchBlobBytes(ref(tag), m.config)).toString()) as { records: Array<{ key: string }> }).records.map((r) => r.key).sort();
    };
    expect(await keys('other')).toEqual(await keys('main'));
    for (const [order, winner, loser] of [
      [['other', 'main'], other, main],
      [['main', 'other'], main, other],
    ] as const) {
      const r = await build('v1', from(...order));
      expect([order, counts(r.stderr)]).toEqual([order, '0 steps run, 2 cached']);
      const layers = await imageLayers(r.root);
      // the base layer, then the two steps' layers, both from the first cache; the RUN's
      // layer (random bytes) is in that cache only
      expect([order, layers.length, layers.slice(1).every((l) => winner.has(l)), loser.has(layers.at(-1)!)]).toEqual([order, 3, true, false]);
    }
  }, 300_000);

  it('--explain-cache compares a miss with the steps of a later cache when the first has none of that kind', async () => {
    // a cache whose only step on the base image is a RUN: nothing to compare a COPY with
    expect((await build('x', ['--cache-to', `type=registry,ref=${ref('unrelated')},mode=max`], ['RUN echo unrelated > /u'])).code).toBe(0);
    const r = await build('v3', [...from('unrelated', 'main'), '--explain-cache']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/COPY src\.txt \/src\.txt: cache miss: the content of the sources changed .*\(compared with the imported cache's step of /);
  }, 300_000);
});
