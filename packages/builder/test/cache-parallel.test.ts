/**
 * The content-addressed cache (mtimes do not count, only dependent steps rerun, a build arg
 * invalidates only the steps that see it, --no-cache-filter, --explain-cache) and parallel
 * stages, on the real CLI with runc and a local registry serving busybox.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { hoist, tempDir } from '@hoist/testkit';
import { startBaseEnv, type BaseEnv } from './helpers/env.js';
import { build, withStatus, writeContext } from './helpers/builds.js';

let base: BaseEnv;
let work: string;
let busybox: string;

beforeAll(async () => {
  [base, work] = await Promise.all([startBaseEnv(), tempDir('builder-cache')]);
  busybox = base.refs.busybox!;
}, 120_000);

afterAll(async () => {
  await base?.stop();
  if (work) await fsp.rm(work, { recursive: true, force: true });
});

describe('content-addressed cache', () => {
  let store: string;
  let ctx: string;
  let first: Awaited<ReturnType<typeof build>>;

  beforeAll(async () => {
    store = path.join(work, 'store-cache');
    ctx = await writeContext(path.join(work, 'ctx-cache'), {
      Dockerfile: [
        `FROM ${busybox} AS main`,
        'RUN echo base > /base',
        'COPY a.txt /a.txt',
        'COPY b.txt /b.txt',
        'RUN cat /b.txt > /b-copy',
        'ARG V=1',
        'COPY c.txt /c.txt',
        'RUN echo "$V" > /v',
        '',
        `FROM ${busybox} AS other`,
        'RUN echo other > /other',
        '',
      ].join('\n'),
      'a.txt': 'a\n',
      'b.txt': 'b\n',
      'c.txt': 'c\n',
    });
    first = await build(store, ctx, ['--target', 'main']);
  }, 120_000);

  it('runs every step the first time', () => {
    expect(first.stderr).not.toContain('ERROR');
    expect(first.code).toBe(0);
    expect(withStatus(first, 'CACHED')).toEqual([]);
    expect(withStatus(first, 'DONE')).toHaveLength(6);
  });

  it('touching files (mtime only) is a full cache hit with the same image', async () => {
    const later = new Date(Date.now() + 3_600_000);
    for (const f of ['a.txt', 'b.txt', 'c.txt', 'Dockerfile']) await fsp.utimes(path.join(ctx, f), later, later);
    const r = await build(store, ctx, ['--target', 'main']);
    expect(r.code).toBe(0);
    expect(withStatus(r, 'DONE')).toEqual([]);
    expect(withStatus(r, 'CACHED')).toHaveLength(6);
    expect(r.digest).toBe(first.digest);
  });

  it('changing one copied file reruns only the steps after it', async () => {
    await fsp.writeFile(path.join(ctx, 'b.txt'), 'b changed\n');
    const r = await build(store, ctx, ['--target', 'main', '--explain-cache']);
    expect(r.code).toBe(0);
    expect(withStatus(r, 'CACHED')).toEqual(['RUN echo base > /base', 'COPY a.txt /a.txt']);
    expect(withStatus(r, 'DONE')).toEqual(['COPY b.txt /b.txt', 'RUN cat /b.txt > /b-copy', 'COPY c.txt /c.txt', 'RUN echo "$V" > /v']);
    // --explain-cache names the input that changed, and says why the later steps missed
    expect(r.stderr).toMatch(/COPY b\.txt \/b\.txt: cache miss: the content of the sources changed/);
    expect(r.stderr).toMatch(/RUN cat \/b\.txt > \/b-copy: cache miss: nothing was cached on top of the previous step/);
  });

  it('a build-arg change reruns only the steps that see it', async () => {
    const r = await build(store, ctx, ['--target', 'main', '--build-arg', 'V=2', '--explain-cache']);
    expect(r.code).toBe(0);
    expect(withStatus(r, 'DONE')).toEqual(['RUN echo "$V" > /v']);
    expect(withStatus(r, 'CACHED')).toHaveLength(5);
    // records keep digests, not values: the arg is named, its values are not shown
    expect(r.stderr).toMatch(/RUN echo "\$V" > \/v: cache miss: build arg V changed \(compared with the step cached/);
    // and the other value is still cached
    const back = await build(store, ctx, ['--target', 'main']);
    expect(withStatus(back, 'DONE')).toEqual([]);
  });

  it('--no-cache-filter reruns only the named stage; --no-cache reruns all', async () => {
    await build(store, ctx, ['--target', 'other']);
    const all = await build(store, ctx, ['--target', 'other', '--no-cache']);
    expect(withStatus(all, 'DONE')).toEqual(['RUN echo other > /other']);
    const f = await build(store, ctx, ['--target', 'other', '--no-cache-filter', 'other']);
    expect(withStatus(f, 'DONE')).toEqual(['RUN echo other > /other']);
    const zero = await build(store, ctx, ['--target', 'main', '--no-cache-filter', 'other']);
    expect(withStatus(zero, 'DONE')).toEqual([]);
  });

  it('a RUN bind-mounting the context keys on the content it sees (through .dockerignore)', async () => {
    const bstore = path.join(work, 'store-bind');
    const bctx = await writeContext(path.join(work, 'ctx-bind'), {
      Dockerfile: `FROM ${busybox}\nRUN --mount=type=bind,source=conf,target=/conf ls /conf > /listing && cat /conf/app.conf > /seen\n`,
      'conf/app.conf': 'v1\n',
      'conf/ignored.tmp': 'x\n',
      '.dockerignore': '**/*.tmp\n',
    });
    const one = await build(bstore, bctx, ['-t', 'bind:1']);
    expect(one.code).toBe(0);
    const listing = await hoist(['run', '--root', bstore, 'bind:1', 'cat', '/listing']);
    expect(listing.stdout).toBe('app.conf\n');
    const later = new Date(Date.now() + 7_200_000);
    await fsp.utimes(path.join(bctx, 'conf', 'app.conf'), later, later);
    await fsp.writeFile(path.join(bctx, 'conf', 'ignored.tmp'), 'changed but ignored\n');
    expect(withStatus(await build(bstore, bctx), 'DONE')).toEqual([]);
    await fsp.writeFile(path.join(bctx, 'conf', 'app.conf'), 'v2\n');
    expect(withStatus(await build(bstore, bctx), 'DONE')).toHaveLength(1);
  }, 60_000);

  it('a COPY --link layer is reused when the steps below it change', async () => {
    const lstore = path.join(work, 'store-link');
    const lctx = await writeContext(path.join(work, 'ctx-link'), {
      Dockerfile: `FROM ${busybox}\nARG X\nRUN echo "$X" > /x\nCOPY --link big.txt /data/big.txt\n`,
      'big.txt': 'payload\n'.repeat(1000),
    });
    const lastLayer = async (tag: string): Promise<string> => {
      const i = await hoist(['inspect', '--root', lstore, tag]);
      return (JSON.parse(i.stdout) as { manifest: { layers: Array<{ digest: string }> } }).manifest.layers.at(-1)!.digest;
    };
    expect((await build(lstore, lctx, ['--build-arg', 'X=1', '-t', 'link:1'])).code).toBe(0);
    expect((await build(lstore, lctx, ['--build-arg', 'X=2', '-t', 'link:2'])).code).toBe(0);
    expect(await lastLayer('link:2')).toBe(await lastLayer('link:1'));
  }, 60_000);

  it('keys persist in the store as small records', async () => {
    const shards = await fsp.readdir(path.join(store, 'cache', 'keys'));
    expect(shards.length).toBeGreaterThan(0);
  });
});

describe('parallel stages', () => {
  /**
   * Stage `me` marks itself started in a shared cache mount, then waits (at most `polls` x 50 ms:
   * a safety bound, not a measurement) for the other stage's mark, and writes down whether it
   * saw it before it finished: `together` means both had started before either ended.
   */
  const rendezvous = (id: string, me: string, other: string, polls: number): string =>
    `RUN --mount=type=cache,id=${id},sharing=shared,target=/c sh -c 'touch /c/${me}; i=0; while [ ! -e /c/${other} ] && [ $i -lt ${polls} ]; do sleep 0.05; i=$((i+1)); done; if [ -e /c/${other} ]; then echo together > /${me}; else echo alone > /${me}; fi'`;
  const stages = (id: string, polls: number): string =>
    [
      `FROM ${busybox} AS one`,
      rendezvous(id, 'one', 'two', polls),
      `FROM ${busybox} AS two`,
      rendezvous(id, 'two', 'one', polls),
      `FROM ${busybox}`,
      'COPY --from=one /one /one',
      'COPY --from=two /two /two',
      'RUN cat /one /two > /seen',
      '',
    ].join('\n');
  const seen = async (store: string, tag: string): Promise<string[]> => (await hoist(['run', '--root', store, tag, 'cat', '/seen'])).stdout.trim().split('\n');

  it('two independent stages run at the same time: each RUN sees the other start before it ends', async () => {
    const store = path.join(work, 'store-parallel');
    const ctx = await writeContext(path.join(work, 'ctx-parallel'), { Dockerfile: stages('meet-parallel', 600) });
    const r = await build(store, ctx, ['--jobs', '2', '-t', 'par:1']);
    expect(r.stderr).not.toContain('ERROR');
    expect(r.code).toBe(0);
    expect(await seen(store, 'par:1')).toEqual(['together', 'together']);
  }, 90_000);

  it('--jobs 1 runs them one after the other: the first never sees the second start', async () => {
    const store = path.join(work, 'store-serial');
    const ctx = await writeContext(path.join(work, 'ctx-serial'), { Dockerfile: stages('meet-serial', 20) });
    const r = await build(store, ctx, ['--jobs', '1', '-t', 'ser:1']);
    expect(r.code).toBe(0);
    expect((await seen(store, 'ser:1')).sort()).toEqual(['alone', 'together']);
  }, 90_000);

  it('sharing=locked serialises a cache mount between parallel stages', async () => {
    const store = path.join(work, 'store-locked');
    const step = (n: string): string => `RUN --mount=type=cache,id=shared-log,sharing=locked,target=/c sh -c 'echo start-${n} >> /c/log; sleep 1; echo end-${n} >> /c/log'`;
    const ctx = await writeContext(path.join(work, 'ctx-locked'), {
      Dockerfile: [
        `FROM ${busybox} AS a`,
        step('a'),
        `FROM ${busybox} AS b`,
        step('b'),
        `FROM ${busybox}`,
        'COPY --from=a /etc/passwd /a',
        'COPY --from=b /etc/passwd /b',
        'RUN --mount=type=cache,id=shared-log,target=/c cp /c/log /log',
        '',
      ].join('\n'),
    });
    const r = await build(store, ctx, ['--jobs', '2', '-t', 'locked:1']);
    expect(r.stderr).not.toContain('ERROR');
    expect(r.code).toBe(0);
    const out = await hoist(['run', '--root', store, 'locked:1', 'cat', '/log']);
    const lines = out.stdout.trim().split('\n');
    expect(lines).toHaveLength(4);
    // never interleaved: each start is followed by its own end
    expect(lines[0]!.replace('start-', 'end-')).toBe(lines[1]);
    expect(lines[2]!.replace('start-', 'end-')).toBe(lines[3]);
  }, 60_000);
});
