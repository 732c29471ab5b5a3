/**
 * SnapshotMaintenance: the store tools (prune, fsck, du) see and change the snapshot layout
 * only through it. Snapshots made by a real Snapshotter (overlay), then listed, measured,
 * removed; a torn unpack and a dangling link are found; work dirs are named with their owners.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { MediaType, type Descriptor, type Digest } from '@hoist/oci';
import { SnapshotMaintenance, Snapshotter, encodeHeader } from '@hoist/snapshotter';
import { openStore } from './helpers.js';

async function putLayer(snaps: Snapshotter, name: string, content: string): Promise<{ diffId: Digest; descriptor: Descriptor }> {
  const body = Buffer.from(content);
  const tar = Buffer.concat([encodeHeader({ name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: 1_600_000_000 }), body, Buffer.alloc((512 - (body.length % 512)) % 512), Buffer.alloc(1024)]);
  const { digest, size } = await snaps.blobs.put(Readable.from([tar]));
  return { diffId: digest, descriptor: { mediaType: MediaType.OciLayer, digest, size } };
}

describe('SnapshotMaintenance', () => {
  test('lists complete and torn snapshots, removes one (its bytes reported), finds and clears its dangling link', async () => {
    const { snaps } = await openStore();
    const a = await putLayer(snaps, 'a.txt', 'A'.repeat(3000));
    const b = await putLayer(snaps, 'b.txt', 'B');
    for (const l of [a, b]) await snaps.ensureLayer(l);
    const torn = path.join(snaps.root, 'snapshots', 'c'.repeat(64));
    await fsp.mkdir(path.join(torn, 'diff'), { recursive: true });

    const m = new SnapshotMaintenance(snaps.root);
    const listed = (await m.list()).map((e) => ({ diffId: e.diffId, complete: e.complete, link: typeof e.link }));
    expect(listed.sort((x, y) => x.diffId.localeCompare(y.diffId))).toEqual(
      [
        { diffId: a.diffId, complete: true, link: 'string' },
        { diffId: b.diffId, complete: true, link: 'string' },
        { diffId: `sha256:${'c'.repeat(64)}`, complete: false, link: 'undefined' },
      ].sort((x, y) => x.diffId.localeCompare(y.diffId)),
    );
    expect((await m.usage()).count).toBe(3);
    expect(await m.danglingLinks()).toEqual([]);

    const entryA = (await m.list()).find((e) => e.diffId === a.diffId)!;
    const removed = await m.remove(entryA);
    expect(removed).toBeGreaterThanOrEqual(3000);
    expect(await fsp.stat(entryA.dir).then(() => true, () => false)).toBe(false);
    expect(await snaps.has(a.diffId)).toBe(false);
    expect(await m.danglingLinks()).toEqual([path.join(snaps.root, 'l', entryA.link!)]);
    expect(await m.removeDanglingLinks()).toBe(1);
    expect(await m.danglingLinks()).toEqual([]);
    // removing it again is a no-op
    expect(await m.remove(entryA)).toBe(0);
  });

  test("removing a chain tree removes its ownership record (no-privilege mode) too", async () => {
    const { snaps } = await openStore('copy');
    const m = new SnapshotMaintenance(snaps.root);
    const hex = 'd'.repeat(64);
    await fsp.mkdir(path.join(snaps.root, 'chains', hex, 'etc'), { recursive: true });
    await fsp.mkdir(path.join(snaps.root, 'owners'), { recursive: true });
    await fsp.writeFile(path.join(snaps.root, 'owners', hex), '0 42 "etc/shadow"\n');
    const [chain] = await m.chains();
    expect(chain!.chainId).toBe(`sha256:${hex}`);
    await m.remove(chain!);
    expect(await fsp.readdir(path.join(snaps.root, 'owners'))).toEqual([]);
    expect(await m.chains()).toEqual([]);
  });

  test('work dirs are named with their owner; a live mount shows as a mount point of its dir', async () => {
    const { snaps } = await openStore();
    const m = new SnapshotMaintenance(snaps.root);
    const mounted = await snaps.mount([]);
    try {
      const work = await m.work();
      const mine = work.filter((w) => w.kind === 'mount');
      expect(mine).toHaveLength(1);
      expect(mine[0]!.name.startsWith(`${process.pid}-`)).toBe(true);
      expect((await m.mountPoints()).map((p) => p.name)).toContain(mine[0]!.name);
    } finally {
      await mounted.release();
    }
    expect((await m.work()).filter((w) => w.kind === 'mount')).toEqual([]);
  });
});
