/**
 * ImageStore.tag (issue 16): tagging a reference with the manifest it already names (a fully
 * cached rebuild) does not rewrite index.json (no new file, no fsync); a new target does.
 */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ImageStore, MediaType } from '@hoist/oci';

let dir: string;
beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hoist-tag-'));
});
afterEach(async () => fsp.rm(dir, { recursive: true, force: true }));

it('the same tag again leaves index.json as it is; another target rewrites it', async () => {
  const store = await ImageStore.open(dir);
  const a = await store.blobs.putBytes(Buffer.from('{"schemaVersion":2,"layers":[]}'), MediaType.OciManifest);
  const b = await store.blobs.putBytes(Buffer.from('{"schemaVersion":2,"layers":[] }'), MediaType.OciManifest);
  await store.tag('app:1', a);
  await store.tag('other:1', b);
  const index = path.join(dir, 'index.json');
  const first = await fsp.stat(index);
  await store.tag('app:1', a);
  const again = await fsp.stat(index);
  expect(again.ino).toBe(first.ino);
  expect((await store.resolve('app:1'))?.digest).toBe(a.digest);
  await store.tag('app:1', b);
  expect((await fsp.stat(index)).ino).not.toBe(first.ino);
  expect((await store.resolve('app:1'))?.digest).toBe(b.digest);
  expect((await store.list()).map((i) => i.ref).sort()).toEqual(['docker.io/library/app:1', 'docker.io/library/other:1']);
});
