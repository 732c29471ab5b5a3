/**
 * Exported cache mounts with a real package manager (issue 13): `npm ci` against the npm
 * registry with `--mount=type=cache,target=/root/.npm`. Runner A builds and exports with
 * `cache-mounts=true`; runner B (empty store) adds one dependency and rebuilds: npm's own log
 * shows its cache answering for everything but the new package. The node base image is made
 * from Debian and the host's Node (no Node image to pull). Needs the npm registry reachable.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { debianTarball, hoist, startRegistry, tempDir, REPO_ROOT, type RunningRegistry } from '@hoist/testkit';

const FIXTURE = path.join(REPO_ROOT, 'fixtures', 'apps', 'node-npm-cache');

function counts(stderr: string): { misses: number; hits: number; packages: number } {
  const n = (k: string): number => Number(new RegExp(`${k}=(\\d+)`).exec(stderr)?.[1] ?? NaN);
  return { misses: n('npm-cache-misses'), hits: n('npm-cache-hits'), packages: n('npm-packages') };
}

describe('npm cache mount follows CI runners', () => {
  let registry: RunningRegistry;
  let work: string;
  let nodeBase: string;

  beforeAll(async () => {
    [registry, work] = await Promise.all([startRegistry(), tempDir('cache-mounts-npm')]);
    const seed = path.join(work, 'seed');
    expect((await hoist(['import', '--root', seed, await debianTarball(), 'debian:bookworm'])).code).toBe(0);
    const debian = `${registry.host}/base/debian:bookworm`;
    expect((await hoist(['push', '--root', seed, '--progress', 'quiet', 'debian:bookworm', debian])).code).toBe(0);
    // node-base: Debian, the host's node and npm, and the host's CA bundle (for npm's TLS)
    const ctx = path.join(work, 'node-base');
    await fsp.mkdir(ctx, { recursive: true });
    await fsp.copyFile(process.execPath, path.join(ctx, 'node'));
    await fsp.cp('/usr/lib/node_modules/npm', path.join(ctx, 'npm'), { recursive: true, verbatimSymlinks: true });
    await fsp.copyFile('/etc/ssl/certs/ca-certificates.crt', path.join(ctx, 'ca.crt'));
    await fsp.writeFile(
      path.join(ctx, 'Dockerfile'),
      [
        `FROM ${debian}`,
        'COPY node /usr/local/bin/node',
        'COPY npm /usr/local/lib/node_modules/npm',
        'COPY ca.crt /etc/ssl/certs/ca-certificates.crt',
        'RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm && node --version',
        'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt',
        '',
      ].join('\n'),
    );
    nodeBase = `${registry.host}/base/node:20`;
    const b = await hoist(['build', '--root', seed, '--progress', 'plain', '-t', nodeBase, '--push', ctx], { timeoutMs: 600_000 });
    if (b.code !== 0) throw new Error(b.stderr);
  }, 900_000);

  afterAll(async () => {
    await registry?.stop();
    await fsp.rm(work, { recursive: true, force: true });
  });

  it('runner B, one dependency more, installs from the warm npm cache runner A exported', async () => {
    const cacheRef = `${registry.host}/app/npm-cache:main`;
    const flags = ['--cache-from', `type=registry,ref=${cacheRef}`, '--cache-to', `type=registry,ref=${cacheRef},cache-mounts=true`, '--build-arg', `NODE_BASE=${nodeBase}`];
    const ctxA = path.join(work, 'app-a');
    await fsp.cp(FIXTURE, ctxA, { recursive: true });
    await fsp.rm(path.join(ctxA, 'v2'), { recursive: true });
    const a = await hoist(['build', '--root', path.join(work, 'runner-a'), '--progress', 'plain', ...flags, '-t', 'app:1', ctxA], { timeoutMs: 600_000 });
    if (a.code !== 0) throw new Error(a.stderr);
    const ca = counts(a.stderr);
    expect(ca.hits).toBe(0);
    expect(ca.misses).toBeGreaterThan(50);
    expect(a.stderr).toMatch(/cache mount \/root\/.npm: \d+ files/);

    const ctxB = path.join(work, 'app-b');
    await fsp.cp(ctxA, ctxB, { recursive: true });
    for (const f of ['package.json', 'package-lock.json']) await fsp.copyFile(path.join(FIXTURE, 'v2', f), path.join(ctxB, f));
    const b = await hoist(['build', '--root', path.join(work, 'runner-b'), '--progress', 'plain', ...flags, '-t', 'app:2', ctxB], { timeoutMs: 600_000 });
    if (b.code !== 0) throw new Error(b.stderr);
    expect(b.stderr).toMatch(/cache mount \/root\/.npm: seeded from the imported cache/);
    const cb = counts(b.stderr);
    expect(cb.packages).toBe(ca.packages + 1); // dayjs, which has no dependencies
    // only the new package (its metadata and tarball) is fetched from the npm registry
    expect(cb.misses).toBeLessThanOrEqual(2);
    expect(cb.hits).toBeGreaterThanOrEqual(ca.misses);
    process.stdout.write(`npm cache mount: runner A ${ca.misses} requests to the npm registry; runner B ${cb.misses} (and ${cb.hits} answered by the seeded cache)\n`);
  }, 1_200_000);
});
