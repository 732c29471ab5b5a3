/** No-privilege mode: the files this process wrote as itself are root's (0:0) in the layer; other ids stay. */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { readTar, tarBytes, ByteSource, type LayerEntry } from '@hoist/snapshotter';
import { tmpdir } from './helpers.js';

async function owners(entries: LayerEntry[], opts: Parameters<typeof tarBytes>[1]): Promise<string[]> {
  async function* gen(): AsyncGenerator<LayerEntry> {
    yield* entries;
  }
  const chunks: Buffer[] = [];
  for await (const b of tarBytes(gen(), opts)) chunks.push(b);
  const out: string[] = [];
  for await (const e of readTar(new ByteSource((async function* () { yield Buffer.concat(chunks); })(), 1 << 20))) {
    out.push(`${e.name} ${e.uid}:${e.gid}`);
    for await (const _ of e.body()) void _;
  }
  return out;
}

describe('tarBytes selfAsRoot', () => {
  test('maps the given uid and gid (each on its own) to 0 and leaves other ids alone', async () => {
    const dir = await tmpdir('self-');
    const files = ['mine', 'their-uid', 'my-uid-their-gid'];
    for (const f of files) await fsp.writeFile(path.join(dir, f), f);
    await fsp.chown(path.join(dir, 'mine'), 4242, 4243);
    await fsp.chown(path.join(dir, 'their-uid'), 7, 4243);
    await fsp.chown(path.join(dir, 'my-uid-their-gid'), 4242, 42);
    const entries: LayerEntry[] = [];
    for (const f of files) entries.push({ kind: 'node', name: f, abs: path.join(dir, f), st: await fsp.lstat(path.join(dir, f), { bigint: true }) });
    expect(await owners(entries, { selfAsRoot: { uid: 4242, gid: 4243 } })).toEqual(['mine 0:0', 'their-uid 7:0', 'my-uid-their-gid 0:42']);
    // as root (this test's process), nothing is mapped by default
    expect(await owners(entries, {})).toEqual(['mine 4242:4243', 'their-uid 7:4243', 'my-uid-their-gid 4242:42']);
    await fsp.rm(dir, { recursive: true, force: true });
  });
});
