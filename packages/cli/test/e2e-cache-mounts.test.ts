/**
 * Exported cache mounts (issue 13): three fresh stores stand for CI runners sharing one real
 * registry. Runner A fills a "package cache" (`RUN --mount=type=cache`) and exports it with
 * `cache-mounts=true`; runner B, one package more, finds the cache warm and makes one package;
 * each export after a small change uploads a fraction of the cache; runner C, fully cached,
 * downloads no cache-mount blob. Traffic is counted by a proxy in front of the registry.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Descriptor } from '@hoist/oci';
import { RegistryClient } from '@hoist/registry-client';
import { hoist, startProxy, startRegistry, storeWithBusybox, tempDir, type RunningProxy, type RunningRegistry } from '@hoist/testkit';

const PKG_BYTES = 64 * 1024;
const PKGS = 300;

function dockerfile(base: string): string {
  return [
    `FROM ${base}`,
    'COPY pkgs.txt /pkgs.txt',
    // "downloads" (makes) each package the cache lacks, and says how many it made
    `RUN --mount=type=cache,target=/var/cache/pkgs made=0; for p in $(cat /pkgs.txt); do if [ ! -f /var/cache/pkgs/$p.deb ]; then head -c ${PKG_BYTES} /dev/urandom > /var/cache/pkgs/$p.deb; made=$((made+1)); fi; done; echo "made=$made in-cache=$(ls /var/cache/pkgs | wc -l)"; wc -l < /pkgs.txt > /installed`,
    '',
  ].join('\n');
}

interface Artifact {
  version: number;
  mounts?: Array<{ key: string; files: number; bytes: number; layers: Array<{ digest: string; size: number }> }>;
}

async function readArtifact(ref: string): Promise<Artifact> {
  const client = new RegistryClient();
  try {
    const { raw } = await client.getManifest(ref);
    const manifest = JSON.parse(raw.toString()) as { config: Descriptor };
    return JSON.parse((await client.fetchBlobBytes(ref, manifest.config)).toString()) as Artifact;
  } finally {
    client.close();
  }
}

/** Request-body bytes of blob uploads from record `from` on. */
function pushed(proxy: RunningProxy, from: number): number {
  return proxy.records.slice(from).filter((r) => (r.method === 'PUT' || r.method === 'PATCH') && /\/blobs\/uploads\//.test(r.path)).reduce((a, r) => a + r.requestBytes, 0);
}

/** Blob GETs (digests) from record `from` on. */
function blobGets(proxy: RunningProxy, from: number): string[] {
  return proxy.records.slice(from).filter((r) => r.method === 'GET' && /\/blobs\/sha256:/.test(r.path)).map((r) => r.path.slice(r.path.indexOf('sha256:')));
}

describe('exported cache mounts follow CI runners', () => {
  let registry: RunningRegistry;
  let proxy: RunningProxy;
  let seed: string;
  let work: string;
  let ctx: string;

  beforeAll(async () => {
    [registry, seed, work] = await Promise.all([startRegistry(), storeWithBusybox(), tempDir('cache-mounts')]);
    proxy = await startProxy({ target: registry.host });
    const base = `${registry.host}/base/busybox:latest`;
    expect((await hoist(['push', '--root', seed, '--progress', 'quiet', 'busybox:latest', base])).code).toBe(0);
    ctx = path.join(work, 'ctx');
    await fsp.mkdir(ctx, { recursive: true });
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), dockerfile(base));
  }, 120_000);

  afterAll(async () => {
    await proxy?.stop();
    await registry?.stop();
    await fsp.rm(seed, { recursive: true, force: true });
    await fsp.rm(work, { recursive: true, force: true });
  });

  const packages = (n: number, extra: string[] = []): string => [...Array.from({ length: n }, (_, i) => `pkg${i}`), ...extra].join('\n') + '\n';
  const build = async (runner: string, pkgs: string, to: boolean) => {
    await fsp.writeFile(path.join(ctx, 'pkgs.txt'), pkgs);
    const cacheRef = `${proxy.host}/app/cache:main`;
    const flags = ['--cache-from', `type=registry,ref=${cacheRef}`, ...(to ? ['--cache-to', `type=registry,ref=${cacheRef},mode=max,cache-mounts=true`] : [])];
    const mark = proxy.records.length;
    const r = await hoist(['build', '--root', path.join(work, runner), '--progress', 'plain', ...flags, '-t', 'app:ci', ctx], { timeoutMs: 300_000 });
    if (r.code !== 0) throw new Error(`build on ${runner} failed:\n${r.stderr}`);
    return { ...r, mark };
  };

  it('runner B finds A\'s package cache warm; small changes upload a fraction; a cached build fetches no mount blob', async () => {
    const cacheRef = `${registry.host}/app/cache:main`;
    const a = await build('runner-a', packages(PKGS), true);
    expect(a.stderr).toContain(`made=${PKGS} in-cache=${PKGS}`);
    const afterA = await readArtifact(cacheRef);
    expect(afterA.version).toBe(4);
    expect(afterA.mounts).toHaveLength(1);
    const mountA = afterA.mounts![0]!;
    expect(mountA.key).toBe('/var/cache/pkgs');
    expect(mountA).toMatchObject({ files: PKGS, bytes: PKGS * PKG_BYTES });
    const pushedA = pushed(proxy, a.mark);
    expect(pushedA).toBeGreaterThanOrEqual(PKGS * PKG_BYTES); // random bytes: the whole cache went up

    // runner B: empty store, one package more; the RUN runs on the seeded cache
    const b = await build('runner-b', packages(PKGS, ['pkg-new']), true);
    expect(b.stderr).toContain(`made=1 in-cache=${PKGS + 1}`);
    expect(b.stderr).toMatch(new RegExp(`cache mount /var/cache/pkgs: seeded from the imported cache \\(${PKGS} files`));
    const mountLayersA = new Set(mountA.layers.map((l) => l.digest));
    expect(blobGets(proxy, b.mark).filter((d) => mountLayersA.has(d)).sort()).toEqual([...mountLayersA].sort());
    const pushedB = pushed(proxy, b.mark);
    const afterB = await readArtifact(cacheRef);
    expect(afterB.mounts![0]).toMatchObject({ files: PKGS + 1, bytes: (PKGS + 1) * PKG_BYTES });
    expect(pushedB / mountA.bytes).toBeLessThan(0.25);

    // runner A again, one more package: its own store has the cache, nothing is seeded
    const a2 = await build('runner-a', packages(PKGS, ['pkg-new', 'pkg-newer']), true);
    expect(a2.stderr).toContain(`made=2 in-cache=${PKGS + 2}`);
    expect(a2.stderr).not.toContain('seeded from the imported cache');
    const pushedA2 = pushed(proxy, a2.mark);
    expect(pushedA2 / mountA.bytes).toBeLessThan(0.25);
    const afterA2 = await readArtifact(cacheRef);

    // runner C: empty store, B's inputs, fully cached: no RUN, no cache-mount blob fetched
    const c = await build('runner-c', packages(PKGS, ['pkg-new']), false);
    expect(c.stderr).toMatch(/\(0 steps run, \d+ cached\)/);
    const mountLayers = new Set([afterA, afterB, afterA2].flatMap((x) => x.mounts!.flatMap((m) => m.layers.map((l) => l.digest))));
    expect(blobGets(proxy, c.mark).filter((d) => mountLayers.has(d))).toEqual([]);
    expect(blobGets(proxy, c.mark).length).toBeGreaterThan(0); // it did fetch (the image's layers)

    process.stdout.write(
      `cache mounts: cache ${mountA.bytes} B in ${mountA.layers.length} layers; A pushed ${pushedA} B; ` +
        `B pushed ${pushedB} B (${((100 * pushedB) / mountA.bytes).toFixed(1)}%); A again pushed ${pushedA2} B (${((100 * pushedA2) / mountA.bytes).toFixed(1)}%)\n`,
    );
  }, 600_000);
});
