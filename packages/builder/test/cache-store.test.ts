// Cache records on disk: a cache whose reader validates, so written without an fsync of its own.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { sha256, type CacheRecord } from '@hoist/oci';
import { tempDir } from '@hoist/testkit';
import { FileCacheStore } from '../src/cache.js';

/** Counts FileHandle.sync calls while `fn` runs. */
async function syncs(dir: string, fn: () => Promise<unknown>): Promise<number> {
  const probeFile = path.join(dir, 'probe');
  await fsp.writeFile(probeFile, '');
  const probe = await fsp.open(probeFile, 'r');
  const proto = Object.getPrototypeOf(probe) as { sync: (...a: unknown[]) => Promise<void> };
  await probe.close();
  const orig = proto.sync;
  let n = 0;
  proto.sync = function (this: unknown, ...a: unknown[]) {
    n++;
    return orig.apply(this, a);
  };
  try {
    await fn();
  } finally {
    proto.sync = orig;
  }
  return n;
}

describe('FileCacheStore', () => {
  test('a record is written with no fsync (what it names was fsynced before); a torn or empty one reads as a miss', async () => {
    const dir = await tempDir('cache-');
    const store = new FileCacheStore(path.join(dir, 'keys'));
    const key = 'a'.repeat(64);
    const rec: CacheRecord = {
      key,
      parent: 'b'.repeat(64),
      created: '1970-01-01T00:00:00Z',
      inputDigests: {},
      layer: { descriptor: { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256('x'), size: 1 }, diffId: sha256('y') },
    };
    expect(await syncs(dir, () => store.put(rec))).toBe(0);
    expect(await store.get(key)).toEqual(rec);
    const file = path.join(dir, 'keys', key.slice(0, 2), `${key}.json`);
    const text = await fsp.readFile(file, 'utf8');
    await fsp.writeFile(file, text.slice(0, 20));
    expect(await store.get(key)).toBeUndefined();
    await fsp.writeFile(file, '');
    expect(await store.get(key)).toBeUndefined();
  });
});
