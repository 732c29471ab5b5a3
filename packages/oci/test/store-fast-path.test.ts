/**
 * The store's cached path (issue 16): opening an existing layout, tagging what a tag names
 * already, asking about a blob twice and writing an image that is there do no needless work.
 * Counted as fs calls (never timed).
 */
import { jest } from '@jest/globals';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BlobStore, ImageStore, MediaType, ensurePrivateDir, sha256, writeImage, type Digest } from '@hoist/oci';

let dir: string;
beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hoist-fast-'));
});
afterEach(async () => {
  jest.restoreAllMocks();
  await fsp.rm(dir, { recursive: true, force: true });
});

/** Count the calls of these fs/promises functions while `fn` runs. */
async function counting<T>(names: Array<'mkdir' | 'open' | 'rename' | 'writeFile' | 'rm' | 'chmod'>, fn: () => Promise<T>): Promise<{ result: T; calls: Record<string, number> }> {
  const spies = names.map((n) => [n, jest.spyOn(fsp, n)] as const);
  try {
    const result = await fn();
    return { result, calls: Object.fromEntries(spies.map(([n, s]) => [n, s.mock.calls.length])) };
  } finally {
    for (const [, s] of spies) s.mockRestore();
  }
}

const WRITES = ['mkdir', 'open', 'rename', 'writeFile', 'rm', 'chmod'] as const;
const none = { mkdir: 0, open: 0, rename: 0, writeFile: 0, rm: 0, chmod: 0 };

it('opening an existing layout makes and writes nothing; a missing part is made again', async () => {
  await ImageStore.open(dir);
  const again = await counting([...WRITES], () => ImageStore.open(dir));
  expect(again.calls).toEqual(none);
  await fsp.rm(path.join(dir, 'oci-layout'));
  await fsp.rm(path.join(dir, 'blobs'), { recursive: true });
  await ImageStore.open(dir);
  expect(JSON.parse(await fsp.readFile(path.join(dir, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
  expect((await fsp.stat(path.join(dir, 'blobs', 'sha256'))).isDirectory()).toBe(true);
});

it('ensurePrivateDir: a private directory is left as it is; an open one is still tightened', async () => {
  const d = path.join(dir, 'root');
  await ensurePrivateDir(d);
  const again = await counting([...WRITES], () => ensurePrivateDir(d));
  expect(again.calls).toEqual(none);
  expect(again.result.isDirectory()).toBe(true);
  await fsp.chmod(d, 0o755);
  await ensurePrivateDir(d);
  expect((await fsp.stat(d)).mode & 0o777).toBe(0o700);
});

it('the same tag again neither takes the index lock nor writes; a new target still does, under the lock', async () => {
  const store = await ImageStore.open(dir);
  const a = await store.blobs.putBytes(Buffer.from('{"schemaVersion":2,"layers":[]}'), MediaType.OciManifest);
  const b = await store.blobs.putBytes(Buffer.from('{"schemaVersion":2,"layers":[] }'), MediaType.OciManifest);
  await store.tag('app:1', a);
  const index = path.join(dir, 'index.json');
  const before = await fsp.stat(index);
  // a live writer holds the lock: a cached rebuild's tag must not wait for it
  const lock = path.join(dir, 'index.json.lock');
  await fsp.writeFile(lock, String(process.pid));
  const again = await counting([...WRITES], () => store.tag('app:1', a));
  expect(again.result).toBe('docker.io/library/app:1');
  expect(again.calls).toEqual(none);
  expect(await fsp.readFile(lock, 'utf8')).toBe(String(process.pid));
  const after = await fsp.stat(index);
  expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
  // a new target waits for the lock (the lock file is taken with synchronous calls, not
  // counted here: that it is waited for shows it), then replaces the index once
  let tagged = false;
  const moving = counting([...WRITES], () => store.tag('app:1', b).then(() => (tagged = true)));
  await new Promise((r) => setTimeout(r, 50)); // the lock is tried again meanwhile
  expect(tagged).toBe(false);
  expect((await store.resolve('app:1'))?.digest).toBe(a.digest);
  await fsp.rm(lock);
  const moved = await moving;
  expect(moved.calls.rename).toBe(1);
  expect((await store.resolve('app:1'))?.digest).toBe(b.digest);
  await expect(fsp.access(lock)).rejects.toThrow();
});

it('tagging a manifest that is not stored is refused without touching the index', async () => {
  const store = await ImageStore.open(dir);
  const missing = { mediaType: MediaType.OciManifest, digest: `sha256:${'a'.repeat(64)}` as Digest, size: 2 };
  await expect(store.tag('app:1', missing)).rejects.toMatchObject({ code: 'BLOB_UNKNOWN' });
  expect(await store.list()).toEqual([]);
});

it('a leased store remembers the blobs it found or wrote; a plain one looks every time', async () => {
  const leased = await ImageStore.open(dir, { leased: true });
  const d = await leased.blobs.putBytes(Buffer.from('{}'), MediaType.OciConfig);
  const other = sha256('x');
  const otherFile = path.join(dir, 'blobs', 'sha256', other.slice(7));
  await fsp.writeFile(otherFile, 'x');
  expect([await leased.blobs.has(other), (await leased.blobs.stat(other))?.size]).toEqual([true, 1]);
  // removed behind its back (what no prune does while the lease is held): not looked for again
  await fsp.rm(leased.blobs.path(d.digest));
  await fsp.rm(otherFile);
  expect([await leased.blobs.has(d.digest), await leased.blobs.has(other)]).toEqual([true, true]);
  // deleted through the store: forgotten
  await leased.blobs.delete(other);
  expect(await leased.blobs.has(other)).toBe(false);

  const plain = new BlobStore(dir);
  await fsp.writeFile(otherFile, 'x');
  expect(await plain.has(other)).toBe(true);
  await fsp.rm(otherFile);
  expect(await plain.has(other)).toBe(false);
  expect(await plain.stat(other)).toBeUndefined();
});

it('writeImage: an image that is stored already is not written again; a missing config is', async () => {
  const store = await ImageStore.open(dir);
  const img = { config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers' as const, diff_ids: [] } }, layers: [] };
  const first = await writeImage(store.blobs, img);
  const again = await counting([...WRITES], () => writeImage(store.blobs, img));
  expect(again.result).toEqual(first);
  expect(again.calls).toEqual(none);
  await store.blobs.delete(first.configDigest);
  const repaired = await writeImage(store.blobs, img);
  expect(repaired).toEqual(first);
  expect(await store.blobs.has(first.configDigest)).toBe(true);
  expect((await store.load(first.descriptor)).config.value.os).toBe('linux');
});
