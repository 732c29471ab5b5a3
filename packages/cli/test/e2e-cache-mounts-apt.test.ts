/**
 * Exported cache mounts with apt (issue 13): the Debian fixture fixtures/apps/apt-cache keeps
 * apt's lists (/var/lib/apt/lists) and downloaded .debs (/var/cache/apt) in cache mounts and
 * installs a few small packages from the Debian mirror this machine's apt uses (RUN reaches it
 * through its sandbox network). Runner A builds and exports with `cache-mounts=true`; runner B
 * (empty store, same registry) installs one package more: apt's own output shows the lists and
 * the .debs come from the cache runner A exported, and B downloads only the new package.
 * Registry traffic is counted by a proxy in front of the registry.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { debianTarball, hoist, startProxy, startRegistry, tempDir, REPO_ROOT, type RunningProxy, type RunningRegistry } from '@hoist/testkit';
import { aptReport, type AptReport } from './apt-output.js';

const FIXTURE = path.join(REPO_ROOT, 'fixtures', 'apps', 'apt-cache');
const PACKAGES_A = ['hello', 'tree'];
const NEW_PACKAGE = 'less';

/** Blob bytes uploaded to and downloaded from the registry, from record `from` on. */
function registryBytes(proxy: RunningProxy, from: number): { pushed: number; pulled: number } {
  const records = proxy.records.slice(from);
  const pushed = records.filter((r) => (r.method === 'PUT' || r.method === 'PATCH') && /\/blobs\/uploads\//.test(r.path));
  const pulled = records.filter((r) => r.method === 'GET' && /\/blobs\/sha256:/.test(r.path));
  return { pushed: pushed.reduce((n, r) => n + r.requestBytes, 0), pulled: pulled.reduce((n, r) => n + r.responseBytes, 0) };
}

describe('apt cache mounts follow CI runners', () => {
  let registry: RunningRegistry;
  let proxy: RunningProxy;
  let work: string;
  let debian: string;

  beforeAll(async () => {
    [registry, work] = await Promise.all([startRegistry(), tempDir('cache-mounts-apt')]);
    proxy = await startProxy({ target: registry.host });
    const seed = path.join(work, 'seed');
    expect((await hoist(['import', '--root', seed, await debianTarball(), 'debian:bookworm'])).code).toBe(0);
    debian = `${registry.host}/base/debian:bookworm`;
    expect((await hoist(['push', '--root', seed, '--progress', 'quiet', 'debian:bookworm', debian])).code).toBe(0);
  }, 900_000);

  afterAll(async () => {
    await proxy?.stop();
    await registry?.stop();
    await fsp.rm(work, { recursive: true, force: true });
  });

  const build = async (runner: string, packages: string[]): Promise<{ stderr: string; apt: AptReport; registry: { pushed: number; pulled: number }; ms: number }> => {
    const cacheRef = `${proxy.host}/app/apt-cache:main`;
    const mark = proxy.records.length;
    const started = Date.now();
    const r = await hoist(
      [
        'build', '--root', path.join(work, runner), '--progress', 'plain',
        '--cache-from', `type=registry,ref=${cacheRef}`, '--cache-to', `type=registry,ref=${cacheRef},cache-mounts=true`,
        '--build-arg', `DEBIAN_BASE=${debian}`, '--build-arg', `PACKAGES=${packages.join(' ')}`, '-t', 'app:ci', FIXTURE,
      ],
      { timeoutMs: 600_000 },
    );
    if (r.code !== 0) throw new Error(`build on ${runner} failed:\n${r.stderr}`);
    return { stderr: r.stderr, apt: aptReport(r.stderr), registry: registryBytes(proxy, mark), ms: Date.now() - started };
  };

  it('runner B, one package more, gets the lists and the .debs from the cache runner A exported', async () => {
    const a = await build('runner-a', PACKAGES_A);
    // A: a cold cache: the lists and every .deb come from the mirror
    expect(a.apt.listGets.length).toBeGreaterThan(0);
    expect(a.apt.listHits).toBe(0);
    expect(a.apt.debGets.sort()).toEqual(PACKAGES_A);
    expect(a.apt.needToGet!.bytes).toBe(a.apt.needToGet!.total);
    expect(a.stderr).toMatch(/cache mount \/var\/cache\/apt: \d+ files/);
    expect(a.stderr).toMatch(/cache mount \/var\/lib\/apt\/lists: \d+ files/);

    const b = await build('runner-b', [...PACKAGES_A, NEW_PACKAGE]);
    expect(b.stderr).toMatch(/cache mount \/var\/cache\/apt: seeded from the imported cache/);
    expect(b.stderr).toMatch(/cache mount \/var\/lib\/apt\/lists: seeded from the imported cache/);
    // apt-get update: no index is downloaded again. The Release file (InRelease) is checked: a
    // Debian mirror answers "not modified" (Hit:); one that ignores If-Modified-Since (as the
    // one here does) sends it again, and apt, finding it unchanged, fetches no index behind it
    expect(b.apt.listGets.filter((g) => g !== 'InRelease')).toEqual([]);
    expect(b.apt.listHits + b.apt.listGets.length).toBe(a.apt.listGets.filter((g) => g === 'InRelease').length);
    // apt-get install: only the new package's .deb is downloaded; the others are in the cache
    expect(b.apt.debGets).toEqual([NEW_PACKAGE]);
    expect(b.apt.needToGet!.bytes).toBeLessThan(b.apt.needToGet!.total);
    // what the cache answered is what A downloaded (apt prints sizes to 3 digits: 1 kB apart at most)
    expect(Math.abs(b.apt.needToGet!.total - b.apt.needToGet!.bytes - a.apt.needToGet!.total)).toBeLessThanOrEqual(1000);
    // what the RUN downloaded from the mirror (apt's "Fetched" lines): a small fraction of A's
    expect(b.apt.fetched).toBeGreaterThan(0);
    expect(b.apt.fetched / a.apt.fetched).toBeLessThan(0.1);

    const line = (name: string, r: typeof a): string =>
      `${name}: the RUN fetched ${r.apt.fetched} B from the mirror (indexes: ${r.apt.listGets.join(' ') || '-'}, ${r.apt.listHits} current; .debs: ${r.apt.debGets.join(' ')}); ` +
      `registry: pulled ${r.registry.pulled} B, pushed ${r.registry.pushed} B; build ${r.ms} ms`;
    process.stdout.write(`apt cache mounts: ${line('runner A', a)}\n  ${line('runner B', b)} (${((100 * b.apt.fetched) / a.apt.fetched).toFixed(1)}% of A's mirror bytes)\n`);
  }, 1_200_000);
});
