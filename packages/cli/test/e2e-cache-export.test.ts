/**
 * What `--cache-to` exports: no build arg value anywhere (a token used only in a discarded
 * builder stage must not leak through the cache), and exactly the records the mode promises,
 * on cold and warm builds, to a local directory and to the real registry. The expected record
 * counts are read off the Dockerfile: one record per RUN/COPY/ADD/WORKDIR of a stage.
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { Descriptor } from '@hoist/oci';
import { RegistryClient } from '@hoist/registry-client';
import { hoist, startRegistry, storeWithBusybox, tempDir, type RunningRegistry } from '@hoist/testkit';

const TOKEN = `s3cr3t-${randomBytes(12).toString('hex')}`;

function dockerfile(base: string): string {
  return [
    `FROM ${base} AS builder`,
    `ARG NPM_TOKEN=${TOKEN}`,
    'RUN test -n "$NPM_TOKEN" && echo built > /artifact',
    'RUN test -n "$NPM_TOKEN"',
    '',
    `FROM ${base}`,
    'COPY --from=builder /artifact /artifact',
    'RUN true',
    '',
  ].join('\n');
}

/** Layer steps per stage, in Dockerfile order (each adds one layer, so one cache record). */
function layerSteps(text: string): number[] {
  const stages: number[] = [];
  for (const line of text.split('\n')) {
    if (/^FROM\s/i.test(line)) stages.push(0);
    else if (/^(RUN|COPY|ADD|WORKDIR)\s/i.test(line)) stages[stages.length - 1]!++;
  }
  return stages;
}

interface Record_ {
  key: string;
  layer?: { descriptor: { digest: string } };
  inputDigests?: Record<string, string>;
}
interface Exported {
  version: number;
  mode: string;
  records: Record_[];
  /** Every blob of the export: manifest, config, layers. */
  blobs: Buffer[];
}

async function readLocal(dir: string): Promise<Exported> {
  const index = JSON.parse(await fsp.readFile(path.join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
  const blob = (d: string): Promise<Buffer> => fsp.readFile(path.join(dir, 'blobs', 'sha256', d.slice(7)));
  const manifest = JSON.parse((await blob(index.manifests[0]!.digest)).toString()) as { config: { digest: string } };
  const config = JSON.parse((await blob(manifest.config.digest)).toString()) as Exported;
  const names = await fsp.readdir(path.join(dir, 'blobs', 'sha256'));
  return { ...config, blobs: await Promise.all(names.map((n) => blob(`sha256:${n}`))) };
}

async function readRegistry(ref: string): Promise<Exported> {
  const client = new RegistryClient();
  try {
    const { raw } = await client.getManifest(ref);
    const manifest = JSON.parse(raw.toString()) as { config: Descriptor; layers: Descriptor[] };
    const config = await client.fetchBlobBytes(ref, manifest.config);
    const layers = await Promise.all(manifest.layers.map((l) => client.fetchBlobBytes(ref, l, { max: l.size })));
    return { ...(JSON.parse(config.toString()) as Exported), blobs: [raw, config, ...layers] };
  } finally {
    client.close();
  }
}

/** Whether the token is in these bytes, or in them gunzipped. */
function holdsToken(b: Buffer): boolean {
  if (b.includes(TOKEN)) return true;
  return b[0] === 0x1f && b[1] === 0x8b && gunzipSync(b).includes(TOKEN);
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fsp.readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(path.join(e.parentPath, e.name));
  return out;
}

/** An OCI layout holding a cache artifact of format version 1 (what an earlier hoist wrote). */
async function writeV1Cache(dir: string): Promise<void> {
  await fsp.mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  const put = async (bytes: Buffer, mediaType: string): Promise<{ mediaType: string; digest: string; size: number }> => {
    const hex = createHash('sha256').update(bytes).digest('hex');
    await fsp.writeFile(path.join(dir, 'blobs', 'sha256', hex), bytes);
    return { mediaType, digest: `sha256:${hex}`, size: bytes.length };
  };
  const record = { key: 'e'.repeat(64), created: '2026-01-01T00:00:00Z', inputs: { op: 'run', env: [`NPM_TOKEN=${TOKEN}`] } };
  const config = await put(Buffer.from(JSON.stringify({ version: 1, mode: 'max', records: [record] })), 'application/vnd.hoist.build-cache.config.v1+json');
  const manifest = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'application/vnd.hoist.build-cache.v1', config, layers: [] };
  const desc = await put(Buffer.from(JSON.stringify(manifest)), manifest.mediaType);
  await fsp.writeFile(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await fsp.writeFile(path.join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ ...desc, annotations: { 'org.opencontainers.image.ref.name': 'hoist-cache' } }] }));
}

describe('exported build cache', () => {
  let registry: RunningRegistry;
  let seed: string;
  let work: string;
  let ctx: string;
  let text: string;
  let expected: { min: number; max: number };

  beforeAll(async () => {
    [registry, seed, work] = await Promise.all([startRegistry(), storeWithBusybox(), tempDir('cache-export')]);
    const base = `${registry.host}/base/busybox:latest`;
    expect((await hoist(['push', '--root', seed, '--progress', 'quiet', 'busybox:latest', base])).code).toBe(0);
    ctx = path.join(work, 'ctx');
    await fsp.mkdir(ctx, { recursive: true });
    text = dockerfile(base);
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), text);
    const steps = layerSteps(text);
    // the final stage is built FROM the base image (not another stage): min is its own steps
    expected = { min: steps.at(-1)!, max: steps.reduce((a, b) => a + b, 0) };
  }, 120_000);

  afterAll(async () => {
    await registry?.stop();
    await fsp.rm(seed, { recursive: true, force: true });
    await fsp.rm(work, { recursive: true, force: true });
  });

  const build = (root: string, args: string[]) => hoist(['build', '--root', root, '--progress', 'plain', ...args, '-t', 'app:1', ctx]);

  it('holds no build arg value, and min/max export exactly the promised records, cold and warm', async () => {
    const root = path.join(work, 'runner-a');
    const out = (name: string): string => path.join(work, name);
    const reg = (tag: string): string => `${registry.host}/app/cache:${tag}`;
    const cold = await build(root, ['--cache-to', `type=local,dest=${out('cold-min')},mode=min`, '--cache-to', `type=local,dest=${out('cold-max')},mode=max`, '--cache-to', `type=registry,ref=${reg('cold-max')},mode=max`, '--cache-to', `type=registry,ref=${reg('cold-min')}`]);
    expect(cold.stderr).toContain(`(${expected.max} steps run, 0 cached)`);
    expect(cold.code).toBe(0);
    const warm = await build(root, ['--cache-to', `type=local,dest=${out('warm-min')},mode=min`, '--cache-to', `type=local,dest=${out('warm-max')},mode=max`, '--cache-to', `type=registry,ref=${reg('warm-max')},mode=max`]);
    // nothing runs; the builder stage is not even visited (the final stage's steps are all cached)
    expect(warm.stderr).toContain(`(0 steps run, ${expected.min} cached)`);
    expect(warm.code).toBe(0);

    const exports: Array<[string, Exported]> = [
      ['cold-min', await readLocal(out('cold-min'))],
      ['cold-max', await readLocal(out('cold-max'))],
      ['warm-min', await readLocal(out('warm-min'))],
      ['warm-max', await readLocal(out('warm-max'))],
      ['registry cold-min', await readRegistry(reg('cold-min'))],
      ['registry cold-max', await readRegistry(reg('cold-max'))],
      ['registry warm-max', await readRegistry(reg('warm-max'))],
    ];
    for (const [name, e] of exports) {
      expect([name, e.records.length]).toEqual([name, name.endsWith('min') ? expected.min : expected.max]);
      expect([name, e.blobs.filter(holdsToken).length]).toEqual([name, 0]);
      expect([name, e.version]).toEqual([name, 4]);
      // what explain needs is there: the build arg by name, its value only as a digest
      expect(e.records.some((r) => /^sha256:[0-9a-f]{64}$/.test(r.inputDigests?.['arg:NPM_TOKEN'] ?? ''))).toBe(name.endsWith('max'));
    }
    // min is the final image's own records: a subset of max, none of them the builder's
    const keys = (e: Exported): string[] => e.records.map((r) => r.key).sort();
    const [coldMin, coldMax, warmMin, warmMax] = exports.map(([, e]) => e);
    expect(keys(coldMax)).toEqual(expect.arrayContaining(keys(coldMin!)));
    expect(coldMin!.records.every((r) => r.inputDigests?.['arg:NPM_TOKEN'] === undefined)).toBe(true);
    expect(keys(warmMin!)).toEqual(keys(coldMin!));
    expect(keys(warmMax!)).toEqual(keys(coldMax!));

    // the store's own cache records (and their parent index) hold no value either
    const local = await filesUnder(path.join(root, 'cache'));
    expect(local.length).toBeGreaterThan(0);
    const leaking = [];
    for (const f of local) if (holdsToken(await fsp.readFile(f))) leaking.push(f);
    expect(leaking).toEqual([]);
  }, 300_000);

  it('a cache of format version 1 is skipped with a warning, and the next export replaces it', async () => {
    const dir = path.join(work, 'v1-cache');
    await writeV1Cache(dir);
    const r = await build(path.join(work, 'v1-runner'), ['--cache-from', `type=local,src=${dir}`, '--cache-to', `type=local,dest=${dir},mode=max`]);
    expect(r.stderr).toMatch(/WARNING: --cache-from .*v1-cache: cache format version 1, this hoist reads versions 2, 3 and 4; .*continuing without it/);
    expect(r.code).toBe(0);
    const now = await readLocal(dir);
    expect(now.version).toBe(4);
    expect(now.records.length).toBe(expected.max);
  }, 300_000);

  it('--explain-cache names the changed build arg without showing a value, locally and against an imported cache', async () => {
    const other = `other-${randomBytes(6).toString('hex')}`;
    const ref = `${registry.host}/app/cache:explain`;
    const rootA = path.join(work, 'explain-a');
    expect((await build(rootA, ['--cache-to', `type=registry,ref=${ref},mode=max`])).code).toBe(0);
    const runStep = /RUN test -n "\$NPM_TOKEN" && echo built > \/artifact: cache miss: ([^\n]*)/;

    const local = await build(rootA, ['--build-arg', `NPM_TOKEN=${other}`, '--explain-cache']);
    expect(local.code).toBe(0);
    expect(local.stderr.match(runStep)?.[1]).toMatch(/^build arg NPM_TOKEN changed \(compared with the step cached of /);

    const fresh = await build(path.join(work, 'explain-b'), ['--cache-from', `type=registry,ref=${ref}`, '--build-arg', `NPM_TOKEN=${other}`, '--explain-cache']);
    expect(fresh.code).toBe(0);
    expect(fresh.stderr.match(runStep)?.[1]).toMatch(/^build arg NPM_TOKEN changed \(compared with the imported cache's step of /);
    for (const r of [local, fresh]) {
      expect(r.stderr).not.toContain(TOKEN);
      expect(r.stderr.replace(`NPM_TOKEN=${other}`, '')).not.toContain(other);
    }
  }, 300_000);
});
