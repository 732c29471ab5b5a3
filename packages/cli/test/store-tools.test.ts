/**
 * Store commands on a real store: save/load round trips, corrupt archives, prune (counting
 * blobs before and after), fsck on a consistent and on a corrupted store, du.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { HOIST_BIN, hoist, run, storeWithBusybox, tempDir, REPO_ROOT } from '@hoist/testkit';

const HELLO = path.join(REPO_ROOT, 'fixtures', 'hello');
const GREETING = 'Hello from hoist!\nbuilt by hoist as uid 0\nrunning as app\n';
const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
const hoistSh = (args: string): string => `${q(process.execPath)} ${q(HOIST_BIN)} ${args}`;

interface Inspected {
  descriptor: { digest: string };
  manifest: { config: { digest: string }; layers: Array<{ digest: string }> };
  config: { rootfs: { diff_ids: string[] } };
}

describe('hoist save, load, prune, fsck, du', () => {
  let root: string;
  let work: string;
  let hello: Inspected;
  const fresh: string[] = [];

  const inspect = async (ref: string, r = root): Promise<Inspected> => {
    const out = await hoist(['inspect', '--root', r, ref]);
    if (out.code !== 0) throw new Error(`inspect ${ref}: ${out.stderr}`);
    return JSON.parse(out.stdout) as Inspected;
  };
  const blobsOf = async (r = root): Promise<Set<string>> => new Set((await fsp.readdir(path.join(r, 'oci', 'blobs', 'sha256'))).map((h) => `sha256:${h}`));
  const images = async (r: string): Promise<Array<{ ref: string; digest: string }>> => JSON.parse((await hoist(['images', '--root', r, '--json'])).stdout) as Array<{ ref: string; digest: string }>;
  const newRoot = async (): Promise<string> => {
    const d = await tempDir('fresh');
    fresh.push(d);
    return d;
  };
  const cacheRecordBlobs = async (): Promise<Set<string>> => {
    const out = new Set<string>();
    const dir = path.join(root, 'cache', 'keys');
    for (const shard of await fsp.readdir(dir).catch(() => [] as string[])) {
      for (const f of await fsp.readdir(path.join(dir, shard))) {
        const rec = JSON.parse(await fsp.readFile(path.join(dir, shard, f), 'utf8')) as { layer?: { descriptor: { digest: string } } };
        if (rec.layer) out.add(rec.layer.descriptor.digest);
      }
    }
    return out;
  };
  const reachable = async (refs: string[]): Promise<Set<string>> => {
    const out = new Set<string>();
    for (const r of refs) {
      const i = await inspect(r);
      out.add(i.descriptor.digest);
      out.add(i.manifest.config.digest);
      for (const l of i.manifest.layers) out.add(l.digest);
    }
    return out;
  };
  const buildUnique = async (): Promise<string> => {
    const ctx = path.join(work, `unique-${randomBytes(4).toString('hex')}`);
    await fsp.mkdir(ctx);
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), `FROM busybox:latest\nRUN echo ${randomBytes(8).toString('hex')} > /unique.txt\nRUN echo second > /second.txt\n`);
    const r = await hoist(['build', '--root', root, '--progress', 'plain', ctx]);
    if (r.code !== 0) throw new Error(`build failed: ${r.stderr}`);
    return r.stdout.trim();
  };

  beforeAll(async () => {
    [root, work] = await Promise.all([storeWithBusybox(), tempDir('store-tools')]);
    const b = await hoist(['build', '--root', root, '--progress', 'plain', '-t', 'hello:1', HELLO]);
    if (b.code !== 0) throw new Error(`build failed: ${b.stderr}`);
    hello = await inspect('hello:1');
  });
  afterAll(async () => {
    for (const d of [root, work, ...fresh]) await fsp.rm(d, { recursive: true, force: true });
  });

  it('save (docker-archive) then load into a fresh store round-trips the image digest; the image runs there', async () => {
    const file = path.join(work, 'hello.tar');
    const s = await hoist(['save', '--root', root, 'hello:1', '-o', file]);
    expect(s.code).toBe(0);
    expect(s.stderr).toContain(`saved hello:1 (${hello.descriptor.digest})`);
    const other = await newRoot();
    const l = await hoist(['load', '--root', other, '-i', file]);
    expect(l.stderr).toBe('');
    expect(l.code).toBe(0);
    expect(l.stdout).toBe(`Loaded image: hello:1 (${hello.descriptor.digest})\n`);
    expect(await images(other)).toEqual([expect.objectContaining({ ref: 'docker.io/library/hello:1', digest: hello.descriptor.digest })]);
    const r = await hoist(['run', '--root', other, 'hello:1']);
    expect(r.stdout).toBe(GREETING);
    const f = await hoist(['fsck', '--root', other]);
    expect(f.stdout).toContain('the store is consistent');
    expect(f.code).toBe(0);
  });

  it('save --format oci | load through a pipe round-trips too', async () => {
    const other = await newRoot();
    const r = await run('sh', ['-c', `${hoistSh(`save --root ${q(root)} --format oci hello:1 busybox`)} | ${hoistSh(`load --root ${q(other)}`)}`]);
    expect(r.code).toBe(0);
    const got = (await images(other)).map((i) => [i.ref, i.digest]).sort();
    const busybox = await inspect('busybox');
    expect(got).toEqual([
      ['docker.io/library/busybox:latest', busybox.descriptor.digest],
      ['docker.io/library/hello:1', hello.descriptor.digest],
    ]);
  });

  it('a corrupted archive is rejected and nothing is tagged', async () => {
    const file = path.join(work, 'hello.tar');
    const x = path.join(work, 'x');
    await fsp.mkdir(x);
    expect((await run('tar', ['-C', x, '-xf', file])).code).toBe(0);
    const manifest = JSON.parse(await fsp.readFile(path.join(x, 'manifest.json'), 'utf8')) as Array<{ Layers: string[] }>;
    const layer = path.join(x, manifest[0]!.Layers.at(-1)!);
    const b = await fsp.readFile(layer);
    b[600] = b[600]! ^ 0x20;
    await fsp.writeFile(layer, b);
    const bad = path.join(work, 'bad.tar');
    expect((await run('tar', ['-C', x, '-cf', bad, '.'])).code).toBe(0);
    const other = await newRoot();
    const l = await hoist(['load', '--root', other, '-i', bad]);
    expect(l.code).toBe(1);
    expect(l.stderr).toMatch(/ERROR: the archive is corrupt: layer \d+ .* hashes to sha256:[a-f0-9]{64}, its config says/);
    expect(l.stdout).toBe('');
    expect(await images(other)).toEqual([]);
    const junk = await hoist(['load', '--root', other, '-i', path.join(HELLO, 'Dockerfile')]);
    expect(junk.code).toBe(1);
    expect(junk.stderr).toContain('not a readable archive');
    expect(await images(other)).toEqual([]);
  });

  it('prune leaves exactly what tagged images and the kept build cache use; --all drops the cache too', async () => {
    const untagged = await buildUnique();
    const u = await inspect(`busybox@${untagged}`);
    const uniqueLayer = u.manifest.layers.at(-1)!.digest;
    const uniqueDiff = u.config.rootfs.diff_ids.at(-1)!;
    const snapshot = path.join(root, 'snapshots', 'snapshots', uniqueDiff.slice(7));
    const before = await blobsOf();
    expect(before.has(untagged)).toBe(true);
    expect(before.has(uniqueLayer)).toBe(true);
    await fsp.access(snapshot);

    const p1 = await hoist(['prune', '--root', root, '-f']);
    expect(p1.stderr).toBe('');
    expect(p1.code).toBe(0);
    expect(p1.stdout).toMatch(/Deleted blobs: 2 \(/);
    expect(p1.stdout).toMatch(/Total reclaimed space: \d/);
    const tagged = await reachable(['busybox', 'hello:1']);
    const after1 = await blobsOf();
    expect([...after1].sort()).toEqual([...new Set([...tagged, ...(await cacheRecordBlobs())])].sort());
    expect(after1.has(untagged)).toBe(false); // its manifest and config: nothing holds them
    expect(after1.has(u.manifest.config.digest)).toBe(false);
    expect(after1.has(uniqueLayer)).toBe(true); // its layers: the build cache does
    await fsp.access(snapshot);

    const p2 = await hoist(['prune', '--root', root, '--all', '--force']);
    expect(p2.code).toBe(0);
    expect(p2.stdout).toMatch(/Deleted build cache records: \d+/);
    const after2 = await blobsOf();
    expect([...after2].sort()).toEqual([...tagged].sort());
    expect(before.size - after2.size).toBeGreaterThanOrEqual(4);
    await expect(fsp.access(snapshot)).rejects.toThrow();
    for (const d of hello.config.rootfs.diff_ids) await fsp.access(path.join(root, 'snapshots', 'snapshots', d.slice(7)));

    const r = await hoist(['run', '--root', root, 'hello:1']);
    expect(r.stdout).toBe(GREETING);
    const f = await hoist(['fsck', '--root', root]);
    expect(f.stdout).toContain('the store is consistent');
    expect(f.code).toBe(0);
    // nothing left to do
    const p3 = await hoist(['prune', '--root', root, '-f', '--json']);
    expect(JSON.parse(p3.stdout)).toMatchObject({ reclaimed: 0, blobs: { count: 0 }, snapshots: { count: 0 } });
  });

  it('--keep-storage drops build cache records until the store fits (never images)', async () => {
    await buildUnique();
    const records = (await cacheRecordBlobs()).size;
    expect(records).toBeGreaterThan(0);
    const big = await hoist(['prune', '--root', root, '-f', '--keep-storage', '10GB']);
    expect(big.code).toBe(0);
    expect(big.stdout).not.toContain('Deleted build cache records');
    expect((await cacheRecordBlobs()).size).toBe(records);
    const tiny = await hoist(['prune', '--root', root, '-f', '--keep-storage', '1kB']);
    expect(tiny.code).toBe(0);
    expect(tiny.stdout).toMatch(/Deleted build cache records: \d+/);
    expect(tiny.stdout).toContain('that is what tagged images use');
    expect((await cacheRecordBlobs()).size).toBe(0);
    expect([...(await blobsOf())].sort()).toEqual([...(await reachable(['busybox', 'hello:1']))].sort());
    const bad = await hoist(['prune', '--root', root, '-f', '--keep-storage', 'lots']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--keep-storage.*"lots".*500MB or 2GiB/);
  });

  it('stray temp files: fsck reports them with the fix, prune removes those older than an hour', async () => {
    const tmpDir = path.join(root, 'oci', 'tmp');
    await fsp.mkdir(tmpDir, { recursive: true });
    // names without a pid: a dead process's temp files (named with its pid) go at the next start
    const old = path.join(tmpDir, 'upload-old');
    const recent = path.join(tmpDir, 'upload-recent');
    await fsp.writeFile(old, 'half a blob');
    await fsp.writeFile(recent, 'another half');
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    await fsp.utimes(old, twoHoursAgo, twoHoursAgo);
    const f = await hoist(['fsck', '--root', root]);
    expect(f.code).toBe(1);
    expect(f.stdout).toContain('1 stray temp file(s) older than an hour');
    expect(f.stdout).toContain('fix: run `hoist prune`');
    const p = await hoist(['prune', '--root', root, '-f']);
    expect(p.stdout).toContain('Deleted temp files: 1');
    await expect(fsp.access(old)).rejects.toThrow();
    await fsp.access(recent);
    await fsp.rm(recent);
    expect((await hoist(['fsck', '--root', root])).code).toBe(0);
  });

  it('prune refuses while another process works on the store', async () => {
    const busy = path.join(root, 'snapshots', 'mounts', `${process.pid}-abcdef123456`);
    await fsp.mkdir(busy, { recursive: true });
    try {
      const p = await hoist(['prune', '--root', root, '-f']);
      expect(p.code).toBe(1);
      expect(p.stderr).toContain('the store is in use');
      expect(p.stderr).toContain(`process ${process.pid} has a mount`);
    } finally {
      await fsp.rm(busy, { recursive: true });
    }
  });

  it('fsck detects a corrupted blob (exit 1) and says what to do', async () => {
    const layer = hello.manifest.layers.at(-1)!.digest;
    const file = path.join(root, 'oci', 'blobs', 'sha256', layer.slice(7));
    const good = await fsp.readFile(file);
    const bad = Buffer.from(good);
    bad[Math.floor(bad.length / 2)] = bad[Math.floor(bad.length / 2)]! ^ 0x01;
    await fsp.writeFile(file, bad);
    try {
      const f = await hoist(['fsck', '--root', root]);
      expect(f.code).toBe(1);
      expect(f.stdout).toContain(`ERROR: image docker.io/library/hello:1: layer ${layer} is corrupt`);
      expect(f.stdout).toContain('fix: remove the image (`hoist rm docker.io/library/hello:1`), run `hoist prune`, then pull or rebuild it');
      expect(f.stdout).toContain('the store has 1 problem(s)');
      const j = JSON.parse((await hoist(['fsck', '--root', root, '--json'])).stdout) as { ok: boolean; issues: Array<{ severity: string; problem: string }> };
      expect(j.ok).toBe(false);
      expect(j.issues).toEqual([expect.objectContaining({ severity: 'error', problem: expect.stringContaining(layer) })]);
      // a missing blob too
      await fsp.rm(file);
      const m = await hoist(['fsck', '--root', root]);
      expect(m.code).toBe(1);
      expect(m.stdout).toContain(`layer ${layer} is missing`);
    } finally {
      await fsp.writeFile(file, good);
    }
    expect((await hoist(['fsck', '--root', root])).code).toBe(0);
  });

  it('du shows the space by category, for people and as JSON', async () => {
    await buildUnique();
    const j = JSON.parse((await hoist(['du', '--root', root, '--json'])).stdout) as Record<string, { bytes?: number; count?: number; records?: number }> & { total: number };
    for (const k of ['images', 'buildCache', 'unreferenced', 'snapshots', 'cacheMounts', 'temp']) expect(j[k]).toBeDefined();
    expect(j.images!.count).toBe(2);
    expect(j.images!.bytes).toBeGreaterThan(500_000);
    expect(j.buildCache!.records).toBeGreaterThan(0);
    expect(j.snapshots!.bytes).toBeGreaterThan(0);
    const sum = ['images', 'buildCache', 'unreferenced', 'snapshots', 'cacheMounts', 'temp'].reduce((a, k) => a + j[k]!.bytes!, 0);
    expect(j.total).toBe(sum);
    const t = await hoist(['du', '--root', root]);
    expect(t.code).toBe(0);
    for (const row of ['images', 'build cache', 'unreferenced blobs', 'snapshots', 'cache mounts', 'temp', 'total']) expect(t.stdout).toMatch(new RegExp(`^${row} `, 'm'));
    expect(t.stdout).toMatch(/^images\s+2\s+\d+(\.\d)?[kM]B/m);
  });

  it('save of an unknown image is a usage error; save refuses nothing else', async () => {
    const r = await hoist(['save', '--root', root, 'nope:1', '-o', path.join(work, 'nope.tar')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('image nope:1 is not in the store');
    await expect(fsp.access(path.join(work, 'nope.tar'))).rejects.toThrow();
    const f = await hoist(['save', '--root', root, '--format', 'zip', 'hello:1']);
    expect(f.code).toBe(2);
    expect(f.stderr).toMatch(/--format.*zip[\s\S]*docker, oci/);
  });
});
