/**
 * Pinned cache keys and image digests (issues 13 and 14).
 *
 * The expected strings below were computed ONCE by the builder as it was before the solver
 * refactor and written here as literals. This is the one test whose expected values come from
 * the implementation on purpose: it exists to catch a silent change of the cache key scheme
 * (a key change invalidates every user's cache and every exported cache) or of the bytes of
 * the image. If a change of keys is intended, bump the `v` of cacheKey and update the literals
 * in the same commit, saying why.
 *
 * Everything is fixed: the Dockerfiles, the context (contents and modes), the platform,
 * SOURCE_DATE_EPOCH, and the base image, which the test builds itself FROM scratch (its digest
 * is pinned too). RUN executes a 129-byte static x86-64 program that exits 0, so no machine's
 * busybox version enters a key.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { formatReference, ImageStore, StoreLayer, manifestLayers, parseReference, type Platform } from '@hoist/oci';
import { Snapshotter } from '@hoist/snapshotter';
import { tempDir } from '@hoist/testkit';
import { build, type BuildOptions, type BuildResult, type ImageSource } from '@hoist/builder';

const platform: Platform = { os: 'linux', architecture: 'amd64' };
const SDE = 1_700_000_000;

/** A static ELF64 (x86-64) that calls exit(0): ELF header, one PT_LOAD header, 12 bytes of code. */
function exitZeroElf(): Buffer {
  const code = Buffer.from([0xbf, 0, 0, 0, 0, 0xb8, 60, 0, 0, 0, 0x0f, 0x05]);
  const b = Buffer.alloc(120 + code.length);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]).copy(b, 0);
  b.writeUInt16LE(2, 16); // ET_EXEC
  b.writeUInt16LE(0x3e, 18); // x86-64
  b.writeUInt32LE(1, 20);
  b.writeBigUInt64LE(0x400078n, 24); // entry
  b.writeBigUInt64LE(64n, 32); // phoff
  b.writeUInt16LE(64, 52);
  b.writeUInt16LE(56, 54);
  b.writeUInt16LE(1, 56);
  b.writeUInt32LE(1, 64); // PT_LOAD
  b.writeUInt32LE(5, 68); // R+X
  b.writeBigUInt64LE(0x400000n, 80);
  b.writeBigUInt64LE(0x400000n, 88);
  b.writeBigUInt64LE(BigInt(b.length), 96);
  b.writeBigUInt64LE(BigInt(b.length), 104);
  b.writeBigUInt64LE(0x1000n, 112);
  code.copy(b, 120);
  return b;
}

/** Base images from the test's own store only. */
function localImages(store: ImageStore): ImageSource {
  return {
    resolve: async (ref, opts) => {
      const d = await store.resolve(formatReference(parseReference(ref)));
      if (!d) throw new Error(`no local image ${ref}`);
      const img = await store.load(d, opts.platform);
      const layers = manifestLayers(img.manifest.value, img.config.value, (desc, diffId) => new StoreLayer(store.blobs, desc, diffId));
      return { ref, descriptor: img.descriptor, manifest: img.manifest, config: img.config, layers };
    },
  };
}

async function writeTree(dir: string, files: Record<string, string | Buffer>): Promise<void> {
  for (const [p, content] of Object.entries(files)) {
    const abs = path.join(dir, p);
    await fsp.mkdir(path.dirname(abs), { recursive: true });
    await fsp.writeFile(abs, content);
    await fsp.chmod(abs, p.endsWith('true') ? 0o755 : 0o644);
  }
}

let root: string;
let opts: Pick<BuildOptions, 'store' | 'snapshotter' | 'images' | 'root'>;

beforeAll(async () => {
  root = await tempDir('cache-keys');
  const store = await ImageStore.open(path.join(root, 'oci'));
  const snapshotter = await Snapshotter.open({ root: path.join(root, 'snapshots'), blobs: store.blobs });
  opts = { store, snapshotter, images: localImages(store), root };
});

afterAll(async () => {
  if (root) await fsp.rm(root, { recursive: true, force: true });
});

async function buildDir(name: string, dockerfile: string, files: Record<string, string | Buffer>, tags: string[] = []): Promise<BuildResult> {
  const contextDir = path.join(root, name);
  await writeTree(contextDir, { ...files, Dockerfile: dockerfile });
  return build({ ...opts, contextDir, dockerfile: { path: 'Dockerfile', text: dockerfile }, platform, sourceDateEpoch: SDE, tags, buildArgs: { V: '2' } });
}

/** The chain of a build's steps: `parent -> key` per cache record, in order. */
function chain(r: BuildResult): string[] {
  // PRINT_PINS=1 prints the values (only to update the literals when a key change is intended)
  if (process.env.PRINT_PINS) console.log(JSON.stringify({ chain: r.cacheRecords.max.map((rec) => `${rec.parent} -> ${rec.key}`), digest: r.descriptor.digest }, null, 2));
  return r.cacheRecords.max.map((rec) => `${rec.parent} -> ${rec.key}`);
}

const BASE_DOCKERFILE = 'FROM scratch\nCOPY true /bin/true\nCOPY etc/ /etc/\n';
const MAIN_DOCKERFILE = [
  'FROM scratch AS files',
  'COPY a.txt /files/a.txt',
  'WORKDIR /w',
  'FROM pin/base:1',
  'ARG V=1',
  'ENV E=e',
  'COPY --from=files /files /from-files',
  'RUN ["/bin/true"]',
  'RUN --mount=type=bind,source=a.txt,target=/m ["/bin/true", "mounted"]',
  'COPY --link b.txt /b.txt',
  'ADD c.txt /c.txt',
  'WORKDIR /app',
  'LABEL x=y',
  '',
].join('\n');

describe('pinned cache keys (computed once by the pre-refactor builder: see the header)', () => {
  it('a base image built FROM scratch has fixed keys and a fixed digest', async () => {
    const r = await buildDir('base', BASE_DOCKERFILE, { true: exitZeroElf(), 'etc/passwd': 'root:x:0:0:root:/:/bin/true\n', 'etc/group': 'root:x:0:\n' }, ['pin/base:1']);
    expect(chain(r)).toEqual(PINNED.base.chain);
    expect(r.descriptor.digest).toBe(PINNED.base.digest);
  }, 120_000);

  it('every step of a multi-stage build on that base has a fixed key, and the image a fixed digest', async () => {
    const r = await buildDir('main', MAIN_DOCKERFILE, { 'a.txt': 'alpha\n', 'b.txt': 'bravo\n', 'c.txt': 'charlie\n' });
    expect(r.stats.runSteps).toBe(2);
    expect(chain(r)).toEqual(PINNED.main.chain);
    expect(r.descriptor.digest).toBe(PINNED.main.digest);
  }, 120_000);

  it('a rebuild hits every key and gives the same digest', async () => {
    const r = await buildDir('main', MAIN_DOCKERFILE, { 'a.txt': 'alpha\n', 'b.txt': 'bravo\n', 'c.txt': 'charlie\n' });
    expect(r.stats.executed).toBe(0);
    expect(chain(r)).toEqual(PINNED.main.chain);
    expect(r.descriptor.digest).toBe(PINNED.main.digest);
  }, 120_000);
});

const PINNED = {
  base: {
    chain: [
      'sha256:c5acfc7d511975901e35128eb26a3b1da17d0254584324f32bb2e628288c13dd -> 039a8ac683f218462af776a51c97672208de04ef1fbc10189d489a0e97cdb905',
      '039a8ac683f218462af776a51c97672208de04ef1fbc10189d489a0e97cdb905 -> e582bdf988df0f9212a1d3103c77a3d3878697f8d5de10a9ee9745723ea84dde',
    ],
    digest: 'sha256:c64a0e8109ebc3b2e5fff21a664e0663519a6e8935e1c42f7c8873fb10706f77',
  },
  main: {
    chain: [
      // stage `files` (FROM scratch): COPY, WORKDIR
      'sha256:c5acfc7d511975901e35128eb26a3b1da17d0254584324f32bb2e628288c13dd -> a3e0229b83fdbbfcfa462b6883fa06447b083af2d512102efffffaed973978c6',
      'a3e0229b83fdbbfcfa462b6883fa06447b083af2d512102efffffaed973978c6 -> 4831461ff5f020a2a56508aaa161e2ec0aba9d4caf2272bbb23ed08f18de9e14',
      // the target on pin/base:1: COPY --from, RUN, RUN --mount, COPY --link, ADD, WORKDIR
      'sha256:b3ea7c9b83c6f868c367b85a098a10fb286eabac60381799e189bf38606c92a5 -> 8e335042f983f57ae77987ef17b68fac97d6e2a05d3a40b7b2c0f06cc946432a',
      '8e335042f983f57ae77987ef17b68fac97d6e2a05d3a40b7b2c0f06cc946432a -> 175954950fd310572d5fca14a210011f824b0ec4f9f1034624b9877a25af187f',
      '175954950fd310572d5fca14a210011f824b0ec4f9f1034624b9877a25af187f -> 87992ac20862cb2590f25907c17a0ab2a5d1d50a82b8801c9e40923d7d7e8863',
      '87992ac20862cb2590f25907c17a0ab2a5d1d50a82b8801c9e40923d7d7e8863 -> f08578d8f4b843392423f3d2ffa5d968e99d8af5b407cf4cefe90955e7739cd6',
      'f08578d8f4b843392423f3d2ffa5d968e99d8af5b407cf4cefe90955e7739cd6 -> ac39f3080827e64d2fdc6865fb393828542fb0924ba72f78fd4cd9b92669997a',
      'ac39f3080827e64d2fdc6865fb393828542fb0924ba72f78fd4cd9b92669997a -> a75034184e34156a63de6df1736b58455c4b1b8b8912f153bb16e040dd75fce7',
    ],
    digest: 'sha256:1e1a0922457255001121d572db91f7e6acf24d1580406302b7bb951622367209',
  },
};
