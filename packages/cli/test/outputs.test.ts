/**
 * `hoist build --output`: docker-archive, OCI layout (tar and directory), the root filesystem as
 * a directory and as a tar, type=registry — each read back by an independent tool (skopeo,
 * umoci, GNU tar) and compared with the image in the store.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { HOIST_BIN, hoist, run, startRegistry, storeWithBusybox, tempDir, REPO_ROOT, type RunningRegistry } from '@hoist/testkit';

const HELLO = path.join(REPO_ROOT, 'fixtures', 'hello');
const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
/** `created` timestamps as numbers, so that equal instants compare equal however they are written. */
const sameTimes = (v: unknown): unknown =>
  JSON.parse(JSON.stringify(v), (k, x: unknown) => (k === 'created' && typeof x === 'string' ? Date.parse(x) : x)) as unknown;
const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

interface Inspected {
  descriptor: { digest: string };
  manifest: { config: { digest: string }; layers: Array<{ digest: string }> };
  config: { rootfs: { diff_ids: string[] } };
}

/* Comparing root filesystem trees: paths, types, modes, owners, sizes, content hashes, link targets. */
interface TreeEntry {
  type: 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'other';
  mode: number;
  uid: number;
  gid: number;
  size?: number;
  sha256?: string;
  target?: string;
}

/** Every object below `root` (not root itself), by relative path. */
async function treeOf(root: string): Promise<Map<string, TreeEntry>> {
  const out = new Map<string, TreeEntry>();
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await fsp.readdir(path.join(root, rel))).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const abs = path.join(root, r);
      const st = await fsp.lstat(abs);
      const e: TreeEntry = {
        type: st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : st.isFIFO() ? 'fifo' : 'other',
        mode: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
      };
      if (e.type === 'file') {
        e.size = st.size;
        e.sha256 = createHash('sha256').update(await fsp.readFile(abs)).digest('hex');
      }
      if (e.type === 'symlink') e.target = await fsp.readlink(abs);
      out.set(r, e);
      if (e.type === 'dir') await walk(r);
    }
  };
  await walk('');
  return out;
}

/** Differences between two trees, one line each (empty when equal). */
function treeDiff(a: Map<string, TreeEntry>, b: Map<string, TreeEntry>): string[] {
  const out: string[] = [];
  for (const [p, e] of a) {
    const f = b.get(p);
    if (!f) out.push(`only in first: ${p}`);
    else if (JSON.stringify(e) !== JSON.stringify(f)) out.push(`${p}: ${JSON.stringify(e)} != ${JSON.stringify(f)}`);
  }
  for (const p of b.keys()) if (!a.has(p)) out.push(`only in second: ${p}`);
  return out;
}

describe('hoist build --output', () => {
  let root: string;
  let work: string;
  let digest: string;
  let image: Inspected;

  beforeAll(async () => {
    [root, work] = await Promise.all([storeWithBusybox(), tempDir('outputs')]);
    const r = await hoist([
      // the image itself in every output (attestations in an OCI layout: attestations.test.ts)
      'build', '--root', root, '--progress', 'plain', '-t', 'hello:1', '--provenance=false',
      '-o', `type=docker,dest=${work}/docker.tar`,
      '-o', `type=oci,dest=${work}/oci.tar`,
      '--output', `type=oci,dest=${work}/layout`,
      '-o', `type=local,dest=${work}/rootfs`,
      '-o', `type=tar,dest=${work}/rootfs.tar`,
      HELLO,
    ]);
    if (r.code !== 0) throw new Error(`build failed: ${r.stderr}`);
    digest = r.stdout.trim();
    image = JSON.parse((await hoist(['inspect', '--root', root, 'hello:1'])).stdout) as Inspected;
  });
  afterAll(async () => {
    await fsp.rm(root, { recursive: true, force: true });
    await fsp.rm(work, { recursive: true, force: true });
  });

  it('printed the digest of the image it tagged, and wrote every output', async () => {
    expect(digest).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(image.descriptor.digest).toBe(digest);
    expect((await fsp.readdir(work)).sort()).toEqual(['docker.tar', 'layout', 'oci.tar', 'rootfs', 'rootfs.tar']);
  });

  it('type=docker: manifest.json as documented; skopeo reads the docker-archive and gets the same image', async () => {
    const file = path.join(work, 'docker.tar');
    const x = path.join(work, 'docker-x');
    await fsp.mkdir(x);
    expect((await run('tar', ['-C', x, '-xf', file])).code).toBe(0);
    const manifest = JSON.parse(await fsp.readFile(path.join(x, 'manifest.json'), 'utf8')) as Array<{ Config: string; RepoTags: string[]; Layers: string[] }>;
    expect(manifest).toHaveLength(1);
    const e = manifest[0]!;
    expect(Object.keys(e).sort()).toEqual(['Config', 'Layers', 'RepoTags']);
    expect(e.RepoTags).toEqual(['hello:1']);
    expect(e.Config).toBe(`${image.manifest.config.digest.slice(7)}.json`);
    expect(sha(await fsp.readFile(path.join(x, e.Config)))).toBe(image.manifest.config.digest);
    expect(e.Layers).toHaveLength(image.manifest.layers.length);
    for (let i = 0; i < e.Layers.length; i++) {
      expect(e.Layers[i]).toMatch(/^[a-f0-9]{64}\/layer\.tar$/);
      // uncompressed layer tars: each one hashes to its DiffID
      expect(sha(await fsp.readFile(path.join(x, e.Layers[i]!)))).toBe(image.config.rootfs.diff_ids[i]);
      const dir = path.dirname(e.Layers[i]!);
      expect(await fsp.readFile(path.join(x, dir, 'VERSION'), 'utf8')).toBe('1.0');
      expect((JSON.parse(await fsp.readFile(path.join(x, dir, 'json'), 'utf8')) as { id: string }).id).toBe(dir);
    }
    const repos = JSON.parse(await fsp.readFile(path.join(x, 'repositories'), 'utf8')) as unknown;
    expect(repos).toEqual({ hello: { '1': path.dirname(e.Layers.at(-1)!) } });

    const raw = JSON.parse((await run('skopeo', ['inspect', '--raw', `docker-archive:${file}`])).stdout) as { config: { digest: string }; layers: Array<{ digest: string }> };
    expect(raw.config.digest).toBe(image.manifest.config.digest);
    expect(raw.layers.map((l) => l.digest)).toEqual(image.config.rootfs.diff_ids);
    const layout = path.join(work, 'from-docker');
    const cp = await run('skopeo', ['copy', `docker-archive:${file}`, `oci:${layout}:x`]);
    expect(cp.stderr).toBe('');
    expect(cp.code).toBe(0);
    // skopeo re-serialises the config (Go prints 14:30:31.6Z for 14:30:31.600Z): compare the values
    const cfg = JSON.parse((await run('skopeo', ['inspect', '--config', `oci:${layout}:x`])).stdout) as unknown;
    expect(sameTimes(cfg)).toEqual(sameTimes(image.config));
  });

  it('type=oci: skopeo copy oci-archive:FILE:REF and oci:DIR:REF read it with the same manifest digest', async () => {
    const ref = 'docker.io/library/hello:1';
    for (const src of [`oci-archive:${work}/oci.tar:${ref}`, `oci:${work}/layout:${ref}`]) {
      const raw = await run('skopeo', ['inspect', '--raw', src]);
      expect(raw.stderr).toBe('');
      expect(sha(raw.stdout)).toBe(digest);
    }
    const dest = path.join(work, 'from-oci');
    const cp = await run('skopeo', ['copy', `oci-archive:${work}/oci.tar:${ref}`, `oci:${dest}:x`]);
    expect(cp.code).toBe(0);
    expect(sha((await run('skopeo', ['inspect', '--raw', `oci:${dest}:x`])).stdout)).toBe(digest);
    expect((await fsp.readdir(path.join(work, 'layout'))).sort()).toEqual(['blobs', 'index.json', 'oci-layout']);
  });

  it('type=local equals the tree umoci unpack gives for the same image', async () => {
    const layout = path.join(work, 'umoci-layout');
    expect((await run('skopeo', ['copy', `oci:${root}/oci:docker.io/library/hello:1`, `oci:${layout}:hello`])).code).toBe(0);
    const bundle = path.join(work, 'bundle');
    const un = await run('umoci', ['unpack', '--image', `${layout}:hello`, bundle]);
    expect(un.stderr).toBe('');
    expect(un.code).toBe(0);
    const want = await treeOf(path.join(bundle, 'rootfs'));
    const got = await treeOf(path.join(work, 'rootfs'));
    expect(treeDiff(got, want)).toEqual([]);
    expect(got.size).toBeGreaterThan(200);
    expect(got.get('app/greeting.txt')).toMatchObject({ type: 'file', uid: 0 });
    expect(got.get('home/app')).toMatchObject({ type: 'dir', uid: 1000, gid: 1000 });
    expect(got.get('bin/sh')).toMatchObject({ type: 'symlink', target: '/bin/busybox' });
  });

  it('type=tar (and dest=- on stdout) is the same tree, and the digest stays off stdout', async () => {
    const file = path.join(work, 'stdout.tar');
    const r = await run('sh', ['-c', `${q(process.execPath)} ${q(HOIST_BIN)} build --root ${q(root)} --progress plain -t hello:1 -o - ${q(HELLO)} > ${q(file)}`]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('exported tar to stdout');
    const fromStdout = await fsp.readFile(file);
    expect(fromStdout.equals(await fsp.readFile(path.join(work, 'rootfs.tar')))).toBe(true);
    const x = path.join(work, 'tar-x');
    await fsp.mkdir(x);
    expect((await run('tar', ['--numeric-owner', '-C', x, '-xpf', file])).code).toBe(0);
    expect(treeDiff(await treeOf(x), await treeOf(path.join(work, 'rootfs')))).toEqual([]);
  });

  it('type=registry pushes every tag, as --push does', async () => {
    let registry: RunningRegistry | undefined;
    try {
      registry = await startRegistry();
      const ref = `${registry.host}/demo/out:1`;
      const r = await hoist(['build', '--root', root, '--progress', 'plain', '-t', ref, '-o', 'type=registry', HELLO]);
      expect(r.stderr).toContain(`pushed ${ref}`);
      expect(r.code).toBe(0);
      const raw = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]);
      expect(sha(raw.stdout)).toBe(r.stdout.trim());
    } finally {
      await registry?.stop();
    }
  });

  it('bad values are usage errors (exit 2) naming the flag and the accepted values, before anything is built', async () => {
    for (const [args, why] of [
      [['-o', 'type=zip,dest=x'], 'unknown type "zip"'],
      [['--output', 'type=docker'], 'type=docker needs dest=PATH'],
      [['-o', 'type=local,dest=-'], 'type=local writes a directory'],
      [['-o', 'type=tar,dest=-', '-o', 'type=docker,dest=-'], 'only one output can write to stdout'],
      [['-o', 'type=oci,dest=x,compression=zstd'], 'type=oci does not take compression='],
    ] as const) {
      const r = await hoist(['build', '--root', root, '--progress', 'plain', ...args, HELLO]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('--output');
      expect(r.stderr).toContain(why);
      expect(r.stderr).toContain('type=image|registry|oci|docker|local|tar');
      expect(r.stderr).not.toContain('built sha256');
      expect(r.stdout).toBe('');
    }
  });

  it('a non-empty local dest is refused, and the existing files are left alone', async () => {
    const dest = path.join(work, 'occupied');
    await fsp.mkdir(dest);
    await fsp.writeFile(path.join(dest, 'keep.txt'), 'mine');
    const r = await hoist(['build', '--root', root, '--progress', 'plain', '-o', `type=local,dest=${dest}`, HELLO]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('is not empty');
    expect(await fsp.readdir(dest)).toEqual(['keep.txt']);
    expect((await fsp.readdir(work)).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });
});
