import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { ImageStore, MediaType, appendLayer, emptyImage, writeImage, type Descriptor, type Digest, type Image } from '@hoist/oci';
import { readXattrsTree, walkTree, writeLayer } from '@hoist/snapshotter';
import { registerTempDir } from '@hoist/testkit';

/** A fresh `$TMPDIR/hoist-exp-<prefix>-XXXXXX`, removed after the test file (testkit's registerTempDir). */
export async function tmp(prefix: string): Promise<string> {
  return registerTempDir(await fsp.mkdtemp(path.join(os.tmpdir(), `hoist-exp-${prefix}-`)));
}

export function sh(cmd: string, args: string[], opts: { cwd?: string; input?: Buffer } = {}): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.stdin.on('error', () => undefined);
    p.on('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out), stderr: err }));
    p.stdin.end(opts.input ?? '');
  });
}

/** Files for a layer: path -> content (string) or { dir: true } / { symlink: target }. */
export type Tree = Record<string, string | { dir: true; mode?: number } | { symlink: string } | { content: string; mode: number; uid?: number }>;

export async function makeTree(root: string, tree: Tree): Promise<void> {
  await fsp.mkdir(root, { recursive: true });
  for (const [rel, v] of Object.entries(tree)) {
    const p = path.join(root, rel);
    await fsp.mkdir(path.dirname(p), { recursive: true });
    if (typeof v === 'string') await fsp.writeFile(p, v);
    else if ('dir' in v) {
      await fsp.mkdir(p, { recursive: true });
      if (v.mode !== undefined) await fsp.chmod(p, v.mode);
    } else if ('symlink' in v) await fsp.symlink(v.symlink, p);
    else {
      await fsp.writeFile(p, v.content);
      await fsp.chmod(p, v.mode);
      if (v.uid !== undefined) await fsp.lchown(p, v.uid, v.uid);
    }
  }
  // reproducible: fixed mtimes
  await sh('find', [root, '-exec', 'touch', '-h', '-d', '@1000000000', '{}', '+']);
}

/** A layer from a tree, written with hoist's own layer writer (reproducible gzip). */
export async function hoistLayer(store: ImageStore, tree: Tree): Promise<{ descriptor: Descriptor; diffId: Digest }> {
  const dir = await tmp('tree');
  try {
    await makeTree(dir, tree);
    const w = await writeLayer(store.blobs, walkTree(dir, await readXattrsTree(dir), { overlay: false }), { compression: 'gzip' });
    return { descriptor: w.descriptor, diffId: w.diffId };
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

/** A layer compressed by another tool (node's zlib at level 9): hoist cannot reproduce its blob. */
export async function foreignLayer(store: ImageStore, tree: Tree): Promise<{ descriptor: Descriptor; diffId: Digest }> {
  const dir = await tmp('tree');
  try {
    await makeTree(dir, tree);
    const tar = await sh('tar', ['--sort=name', '--numeric-owner', '--owner=0', '--group=0', '-C', dir, '-cf', '-', '.']);
    const diffId = `sha256:${createHash('sha256').update(tar.stdout).digest('hex')}` as Digest;
    const gz = gzipSync(tar.stdout, { level: 9 });
    const descriptor = await store.blobs.putBytes(gz, MediaType.OciLayerGzip);
    return { descriptor, diffId };
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

export async function makeImage(
  store: ImageStore,
  layers: Array<{ descriptor: Descriptor; diffId: Digest }>,
  opts: { tags?: string[]; cmd?: string[]; format?: 'oci' | 'docker' } = {},
): Promise<Descriptor> {
  let img: Image = emptyImage({ os: 'linux', architecture: 'amd64' });
  for (const l of layers) img = appendLayer(img, l.descriptor, l.diffId, { created: '2001-09-09T01:46:40Z', created_by: 'test' });
  img = { ...img, config: { ...img.config, created: '2001-09-09T01:46:40Z', config: { Cmd: opts.cmd ?? ['sh'], Env: ['PATH=/bin'] } } };
  const w = await writeImage(store.blobs, img, { format: opts.format ?? 'oci' });
  for (const t of opts.tags ?? []) await store.tag(t, w.descriptor);
  return w.descriptor;
}

export async function newStore(): Promise<{ root: string; store: ImageStore }> {
  const root = await tmp('store');
  return { root, store: await ImageStore.open(path.join(root, 'oci')) };
}

/** Members of a tar file: name -> content (regular files) or null. */
export async function tarMembers(file: string): Promise<Map<string, Buffer | null>> {
  const dir = await tmp('untar');
  try {
    const r = await sh('tar', ['-C', dir, '-xf', file]);
    if (r.code !== 0) throw new Error(`tar -xf ${file}: ${r.stderr}`);
    const out = new Map<string, Buffer | null>();
    const walk = async (rel: string): Promise<void> => {
      for (const n of await fsp.readdir(path.join(dir, rel))) {
        const r2 = rel ? `${rel}/${n}` : n;
        const st = await fsp.lstat(path.join(dir, r2));
        if (st.isDirectory()) await walk(r2);
        else out.set(r2, st.isFile() ? await fsp.readFile(path.join(dir, r2)) : null);
      }
    };
    await walk('');
    return out;
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}
