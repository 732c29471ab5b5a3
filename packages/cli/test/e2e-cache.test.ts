/**
 * Two fresh stores on one machine stand for two CI runners sharing a cache through the real
 * registry: runner B imports what runner A exported, runs no RUN step, downloads only layers
 * it exports, and produces the same image digest.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { debianTarball, hoist, run as runTool, startRegistry, storeWithBusybox, tempDir, REPO_ROOT, type RunningRegistry } from '@hoist/testkit';

const CTX = path.join(REPO_ROOT, 'fixtures', 'cache-multistage');

async function blobs(root: string): Promise<Set<string>> {
  return new Set((await fsp.readdir(path.join(root, 'oci', 'blobs', 'sha256')).catch(() => [])).map((h) => `sha256:${h}`));
}

describe('shared build cache through a registry', () => {
  let registry: RunningRegistry;
  let seed: string;
  let work: string;
  let base: string;

  beforeAll(async () => {
    [registry, seed, work] = await Promise.all([startRegistry(), storeWithBusybox(), tempDir('cache')]);
    base = `${registry.host}/base/busybox:latest`;
    const p = await hoist(['push', '--root', seed, '--progress', 'quiet', 'busybox:latest', base]);
    expect(p.code).toBe(0);
  });

  afterAll(async () => {
    await registry?.stop();
    await fsp.rm(seed, { recursive: true, force: true });
    await fsp.rm(work, { recursive: true, force: true });
  });

  it('runner B reuses runner A cache: zero RUN steps, same digest, only exported layers downloaded', async () => {
    const cacheRef = `${registry.host}/app/cache:main`;
    const rootA = path.join(work, 'runner-a');
    const rootB = path.join(work, 'runner-b');
    const common = ['--progress', 'plain', '--build-arg', `BASE=${base}`, '-t', 'app:ci', CTX];

    const t0 = Date.now();
    const a = await hoist(['build', '--root', rootA, '--cache-from', `type=registry,ref=${cacheRef}`, '--cache-to', `type=registry,ref=${cacheRef},mode=max`, ...common]);
    const timeA = Date.now() - t0;
    expect(a.stderr).toContain('no cache there yet');
    expect(a.code).toBe(0);
    expect(a.stderr).toMatch(/exported cache \(\d+ records, mode=max\)/);
    expect(a.stderr).toMatch(/\(\d+ steps run, 0 cached\)/);

    const t1 = Date.now();
    const b = await hoist(['build', '--root', rootB, '--cache-from', `type=registry,ref=${cacheRef}`, ...common]);
    const timeB = Date.now() - t1;
    expect(b.code).toBe(0);
    expect(b.stderr).toMatch(/\(0 steps run, \d+ cached\)/);
    expect(b.stderr).not.toMatch(/^#\d+ DONE/m);
    expect(b.stdout.trim()).toBe(a.stdout.trim());

    // every layer blob in B's store belongs to the final image: nothing else was downloaded
    const inspect = JSON.parse((await hoist(['inspect', '--root', rootB, 'app:ci'])).stdout) as { manifest: { config: { digest: string }; layers: Array<{ digest: string }> } };
    const finalLayers = new Set(inspect.manifest.layers.map((l) => l.digest));
    const inspectA = JSON.parse((await hoist(['inspect', '--root', rootA, 'app:ci'])).stdout) as { manifest: { layers: Array<{ digest: string }> } };
    const blobsA = await blobs(rootA);
    const blobsB = await blobs(rootB);
    const intermediateLayers = [...blobsA].filter((d) => !inspectA.manifest.layers.some((l) => l.digest === d));
    for (const d of intermediateLayers) {
      // build-stage layers (and A's own JSON blobs) must not have reached B
      if (!finalLayers.has(d)) expect(blobsB.has(d) && (await isLayer(rootA, d))).toBe(false);
    }
    for (const l of finalLayers) expect(blobsB.has(l)).toBe(true);
    const run = await hoist(['run', '--root', rootB, 'app:ci']);
    expect(run.stdout).toMatch(/tool built on/);
    expect(run.stdout).toMatch(/assets\/one.txt/);
    process.stdout.write(`shared cache: runner A ${timeA} ms, runner B ${timeB} ms (B/A ${(timeB / timeA).toFixed(2)})\n`);

    // runner C pushes only (--output type=registry): not one layer is downloaded, all are
    // mounted registry-side from the cache and base repositories
    const rootC = path.join(work, 'runner-c');
    const dest = `${registry.host}/app/final:1`;
    const c = await hoist(['build', '--root', rootC, '--cache-from', `type=registry,ref=${cacheRef}`, '--output', 'type=registry',
      '--progress', 'plain', '--build-arg', `BASE=${base}`, '-t', dest, CTX]);
    expect(c.code).toBe(0);
    // the push carries buildx's default provenance: an index of A's image and its attestation manifest
    const top = JSON.parse((await runTool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${dest}`])).stdout) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
    expect(top.manifests.map((m) => m.digest)[0]).toBe(a.stdout.trim());
    expect(top.manifests[1]?.annotations?.['vnd.docker.reference.digest']).toBe(a.stdout.trim());
    expect(c.stderr).toMatch(/\(0 steps run, \d+ cached\)/);
    expect(c.stderr).toContain(`pushed ${dest}`);
    for (const d of await blobs(rootC)) expect(await isLayer(rootC, d)).toBe(false);
    const pulled = await hoist(['pull', '--root', path.join(work, 'runner-d'), '--progress', 'quiet', dest]);
    expect(pulled.code).toBe(0);
    const inspectD = JSON.parse((await hoist(['inspect', '--root', path.join(work, 'runner-d'), dest])).stdout) as { descriptor: { digest: string } };
    expect(inspectD.descriptor.digest).toBe(a.stdout.trim());
  });

  it('Debian multi-stage app: runner B runs no RUN step and downloads only exported layers', async () => {
    // the Debian base: debootstrap minbase (cached), imported and served by the registry
    const tar = await debianTarball();
    const imp = await hoist(['import', '--root', seed, tar, 'debian:bookworm']);
    expect(imp.code).toBe(0);
    const debian = `${registry.host}/base/debian:bookworm`;
    expect((await hoist(['push', '--root', seed, '--progress', 'quiet', 'debian:bookworm', debian])).code).toBe(0);
    // the app's Dockerfile names debian:bookworm; serve it from our registry instead
    const ctx = path.join(work, 'debian-app');
    await fsp.cp(path.join(REPO_ROOT, 'fixtures', 'apps', 'debian-multistage'), ctx, { recursive: true });
    const df = path.join(ctx, 'Dockerfile');
    await fsp.writeFile(df, (await fsp.readFile(df, 'utf8')).replace(/^FROM debian:bookworm/gm, `FROM ${debian}`));
    const cacheRef = `${registry.host}/debian-app/cache:main`;
    const rootA = path.join(work, 'deb-a');
    const rootB = path.join(work, 'deb-b');
    const t0 = Date.now();
    const a = await hoist(['build', '--root', rootA, '--progress', 'plain', '--cache-to', `type=registry,ref=${cacheRef}`, '-t', 'debapp:1', ctx]);
    const timeA = Date.now() - t0;
    expect(a.code).toBe(0);
    expect(a.stderr).toMatch(/RUN useradd/);
    const t1 = Date.now();
    const b = await hoist(['build', '--root', rootB, '--progress', 'plain', '--cache-from', `type=registry,ref=${cacheRef}`, '-t', 'debapp:1', ctx]);
    const timeB = Date.now() - t1;
    expect(b.code).toBe(0);
    expect(b.stderr).toMatch(/\(0 steps run, \d+ cached\)/);
    expect(b.stdout.trim()).toBe(a.stdout.trim());
    // mode=min: the build and inventory stages were never run, so none of their layers came down
    const final = JSON.parse((await hoist(['inspect', '--root', rootB, 'debapp:1'])).stdout) as { manifest: { layers: Array<{ digest: string }> } };
    const want = new Set(final.manifest.layers.map((l) => l.digest));
    const layersB = [];
    for (const d of await blobs(rootB)) if (await isLayer(rootB, d)) layersB.push(d);
    expect(layersB.sort()).toEqual([...want].sort());
    const run = await hoist(['run', '--root', rootB, 'debapp:1']);
    expect(run.code).toBe(0);
    process.stdout.write(`shared cache, Debian app: runner A ${timeA} ms, runner B ${timeB} ms (B/A ${(timeB / timeA).toFixed(2)})\n`);
  });

  it('--explain-cache on a fresh runner names the input that differs from the imported cache', async () => {
    const cacheRef = `${registry.host}/explain/cache:1`;
    const ctx = path.join(work, 'explain-ctx');
    await fsp.cp(CTX, ctx, { recursive: true });
    const common = ['--progress', 'plain', '--build-arg', `BASE=${base}`, '-t', 'explain:1'];
    const a = await hoist(['build', '--root', path.join(work, 'ea'), '--cache-to', `type=registry,ref=${cacheRef},mode=max`, ...common, ctx]);
    expect(a.code).toBe(0);
    await fsp.writeFile(path.join(ctx, 'assets', 'two.txt'), 'asset two, edited\n');
    const b = await hoist(['build', '--root', path.join(work, 'eb'), '--cache-from', `type=registry,ref=${cacheRef}`, '--explain-cache', ...common, ctx]);
    expect(b.code).toBe(0);
    expect(b.stderr).toMatch(/COPY assets\/ \/assets\/: cache miss: the content of the sources changed.*imported cache/);
    // the independent stage's result came from the cache: that stage never ran at all
    expect(b.stderr).not.toMatch(/RUN mkdir -p \/out/);
    expect(b.stderr).toMatch(/\(\d+ steps run, [1-9]\d* cached\)/);
  });

  it('exports to and imports from an OCI layout directory', async () => {
    const dir = path.join(work, 'cache-dir');
    const common = ['--progress', 'plain', '--build-arg', `BASE=${base}`, '-t', 'app:local', CTX];
    const a = await hoist(['build', '--root', path.join(work, 'la'), '--cache-to', `type=local,dest=${dir}`, ...common]);
    expect(a.code).toBe(0);
    expect(JSON.parse(await fsp.readFile(path.join(dir, 'index.json'), 'utf8')).manifests).toHaveLength(1);
    const b = await hoist(['build', '--root', path.join(work, 'lb'), '--cache-from', `type=local,src=${dir}`, ...common]);
    expect(b.code).toBe(0);
    expect(b.stderr).toMatch(/\(0 steps run, \d+ cached\)/);
    expect(b.stdout.trim()).toBe(a.stdout.trim());
  });

  it('rejects a malformed cache spec as a usage error', async () => {
    const r = await hoist(['build', '--root', path.join(work, 'bad'), '--cache-to', 'type=s3,bucket=x', CTX]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--cache-to type must be registry or local');
  });
});

async function isLayer(root: string, digest: string): Promise<boolean> {
  const fh = await fsp.open(path.join(root, 'oci', 'blobs', 'sha256', digest.slice(7)), 'r');
  try {
    const b = Buffer.alloc(2);
    await fh.read(b, 0, 2, 0);
    return b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    await fh.close();
  }
}
