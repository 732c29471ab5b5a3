import { execFile } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { encodeHeader } from '@hoist/snapshotter';
import { registerTempDir } from '@hoist/testkit';
import { ImageStore, MediaType, appendLayer, emptyImage, writeImage, type Descriptor, type Digest, type Image } from '@hoist/oci';

/** A one-file ustar archive. */
export function tarOf(name: string, data: Buffer): Buffer {
  const h = encodeHeader({ name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: 0 });
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([h, data, pad, Buffer.alloc(1024)]);
}

/** A fresh `$TMPDIR/<prefix>XXXXXX`, removed after the test file (testkit's registerTempDir). */
export async function tmpDir(prefix = 'hoist-rc-'): Promise<string> {
  return registerTempDir(await fsp.mkdtemp(path.join(os.tmpdir(), prefix)));
}

export interface TestImage {
  store: ImageStore;
  descriptor: Descriptor;
  layers: Descriptor[];
  config: Descriptor;
  ref: string;
}

/** An image of random (incompressible) layers, tagged `ref` in a fresh store (or `store`). */
export async function makeImage(opts: { layerSizes?: number[]; ref?: string; store?: ImageStore; seedText?: string } = {}): Promise<TestImage> {
  const store = opts.store ?? (await ImageStore.open(await tmpDir('hoist-store-')));
  let img: Image = emptyImage({ os: 'linux', architecture: 'amd64' });
  const layers: Descriptor[] = [];
  for (const [i, size] of (opts.layerSizes ?? [4096, 100_000]).entries()) {
    const content = i === 0 && opts.seedText ? Buffer.from(opts.seedText) : randomBytes(size);
    const tar = tarOf(`file${i}.bin`, content);
    const gz = gzipSync(tar, { level: 1 });
    const diffId = `sha256:${createHash('sha256').update(tar).digest('hex')}` as Digest;
    const put = await store.blobs.put(Readable.from([gz]));
    const desc: Descriptor = { mediaType: MediaType.OciLayerGzip, digest: put.digest, size: put.size };
    layers.push(desc);
    img = appendLayer(img, desc, diffId, { created_by: `layer ${i}` });
  }
  const w = await writeImage(store.blobs, img);
  const ref = opts.ref ?? 'example.com/test/app:1';
  await store.tag(ref, w.descriptor);
  return { store, descriptor: w.descriptor, layers, config: w.manifest.config, ref };
}

export async function newStore(): Promise<ImageStore> {
  return ImageStore.open(await tmpDir('hoist-store-'));
}

export async function storeFiles(store: ImageStore): Promise<string[]> {
  const out: string[] = [];
  for await (const d of store.blobs.list()) out.push(d);
  return out.sort();
}

const execFileP = promisify(execFile);

/** Run a tool to completion (stdin closed, no pipe to break); throws with its stderr on failure. */
export async function tool(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<string> {
  try {
    return (await execFileP(cmd, args, { ...opts, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 })).stdout;
  } catch (e) {
    throw new Error(`${cmd} ${args.join(' ')} failed:\n${(e as { stderr?: string }).stderr ?? e}`);
  }
}

/** An htpasswd file with one bcrypt user. */
export async function htpasswdFile(dir: string, user: string, password: string): Promise<string> {
  const file = path.join(dir, 'htpasswd');
  await fsp.writeFile(file, await tool('htpasswd', ['-Bbn', user, password]));
  return file;
}

/** One layer of a crafted image: tar bytes, and the diff_id the config claims (default: the true one). */
export interface CraftedLayer {
  tar: Buffer;
  diffId?: Digest;
}

/** An image tagged `ref` in `store` whose config says what `layers` claim, true or not (for verification tests). */
export async function craftImage(store: ImageStore, layers: CraftedLayer[], ref: string, extraDiffIds: Digest[] = []): Promise<TestImage> {
  let img: Image = emptyImage({ os: 'linux', architecture: 'amd64' });
  const descs: Descriptor[] = [];
  for (const l of layers) {
    const put = await store.blobs.put(Readable.from([gzipSync(l.tar, { level: 1 })]));
    const desc: Descriptor = { mediaType: MediaType.OciLayerGzip, digest: put.digest, size: put.size };
    descs.push(desc);
    img = appendLayer(img, desc, l.diffId ?? (`sha256:${createHash('sha256').update(l.tar).digest('hex')}` as Digest), {});
  }
  img = { ...img, config: { ...img.config, rootfs: { type: 'layers', diff_ids: [...img.config.rootfs.diff_ids, ...extraDiffIds] } } };
  const w = await writeImage(store.blobs, img);
  await store.tag(ref, w.descriptor);
  return { store, descriptor: w.descriptor, layers: descs, config: w.manifest.config, ref };
}
