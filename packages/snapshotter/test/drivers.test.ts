import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Descriptor, Digest } from '@hoist/oci';
import { diffTrees, readXattrsTree, Snapshotter, stampTree, type Driver, type OverlayXattrs, type TreeStamps } from '@hoist/snapshotter';
import { describeTree, normaliseLinks, openStore, sh, tmpdir, withMount } from './helpers.js';

/** The first layer of every case. */
const BASE = [
  'mkdir -p d/sub e x keep && echo 1 > d/f && echo 2 > d/sub/g && echo 3 > e/h && echo 4 > file && ln file file.hard',
  'echo 5 > keep/k && printf abc > same && ln -s file sym && setfattr -n user.a -v 1 keep/k',
].join(' && ');

/** Run each step as a layer on `driver`: the layers' digests and listings, and the final tree. */
async function layers(driver: Driver, steps: string[], xattrs?: OverlayXattrs): Promise<{ digests: string[]; listing: string[]; tree: unknown; snaps: Snapshotter; descs: Array<{ diffId: Digest; descriptor: Descriptor }> }> {
  const { snaps } = await openStore(driver, xattrs);
  const ids: Digest[] = [];
  const digests: string[] = [];
  const descs: Array<{ diffId: Digest; descriptor: Descriptor }> = [];
  let listing: string[] = [];
  for (const script of [BASE, ...steps]) {
    const r = await withMount(snaps, ids, async (m) => {
      sh(script, { cwd: m.root });
      return m.commit({ sourceDateEpoch: 1_000_000_000 });
    });
    ids.push(r.diffId);
    descs.push({ diffId: r.diffId, descriptor: r.descriptor });
    digests.push(r.diffId, r.descriptor.digest);
    listing = sh(`tar -tzf ${snaps.blobs.path(r.descriptor.digest)}`).split('\n').filter(Boolean);
  }
  const out = await tmpdir('export-');
  await snaps.exportTree(ids, out);
  return { digests, listing, tree: normaliseLinks(await describeTree(out)), snaps, descs };
}

const REF = 'r=$(mktemp) && touch -r same "$r"';
const CASES: Array<{ name: string; steps: string[]; has?: string[]; hasNot?: string[]; is?: string[] }> = [
  { name: 'a dir deleted and made again is opaque', steps: ['rm -rf d && mkdir d && touch d/new'], is: ['d/', 'd/.wh..wh..opq', 'd/new'] },
  { name: 'a dir deleted and made again empty', steps: ['rm -rf d && mkdir d'], is: ['d/', 'd/.wh..wh..opq'] },
  { name: 'a dir made again below a kept one', steps: ['rm -rf d/sub && mkdir -p d/sub/deeper && echo n > d/sub/deeper/n'], has: ['d/sub/.wh..wh..opq'], hasNot: ['d/sub/.wh.g'] },
  { name: 'a file replaced by a dir', steps: ['rm file && mkdir file && echo i > file/i'], has: ['file/.wh..wh..opq', 'file/i'] },
  { name: 'dirs replaced by a file and a symlink', steps: ['rm -rf d && echo now > d && rm -rf e && ln -s keep e'], is: ['d', 'e'] },
  { name: 'a dir renamed', steps: ['mv d moved'], is: ['.wh.d', 'moved/', 'moved/f', 'moved/sub/', 'moved/sub/g'] },
  { name: 'a dir renamed over an empty dir', steps: ['mv -T d x'], has: ['.wh.d', 'x/.wh..wh..opq', 'x/sub/g'] },
  { name: 'a dir renamed onto a deleted one', steps: ['rm -rf e && mv d e'], has: ['.wh.d', 'e/.wh..wh..opq', 'e/f'], hasNot: ['e/.wh.h'] },
  // overlayfs marks a new dir renamed into a merged one opaque; with nothing below, that is dropped
  { name: 'new dirs renamed into place', steps: ['mkdir -p t/u && echo y > t/u/y && mv t fresh && mkdir keep/n && mv keep/n keep/m'], hasNot: ['fresh/.wh..wh..opq', 'keep/m/.wh..wh..opq'] },
  { name: 'a new dir renamed onto a name deleted a layer below', steps: ['rm -rf e', 'mkdir t && mv t e'], is: ['e/'] },
  { name: 'a new dir renamed below a dir made opaque a layer below', steps: ['rm -rf d && mkdir d', 'mkdir t && mv t d/sub'], is: ['d/', 'd/sub/'] },
  { name: 'a rewrite that keeps size and mtime', steps: [`${REF} && printf xyz > same && touch -r "$r" same && rm "$r"`], is: ['same'] },
  { name: 'metadata set to what it was', steps: ['chmod 644 same && chown 0:0 keep && touch -r keep/k keep/k'], is: ['keep/', 'keep/k', 'same'] },
  { name: 'an xattr set and removed again', steps: ['setfattr -n user.b -v 2 same && setfattr -x user.b same'], is: ['same'] },
  { name: 'removing one hard link leaves the other alone', steps: ['rm file.hard'], is: ['.wh.file.hard'] },
  { name: 'a new hard link', steps: ['ln keep/k keep/k2'], is: ['keep/', 'keep/k', 'keep/k2'] },
];

describe('copy driver: the same layers as overlayfs', () => {
  test.each(CASES)('$name', async ({ steps, has, hasNot, is }) => {
    const overlay = await layers('overlay', steps);
    const copy = await layers('copy', steps);
    if (is) expect(overlay.listing).toEqual(is);
    expect(overlay.listing).toEqual(expect.arrayContaining(has ?? []));
    for (const n of hasNot ?? []) expect(overlay.listing).not.toContain(n);
    expect(copy.listing).toEqual(overlay.listing);
    expect(copy.digests).toEqual(overlay.digests);
    expect(copy.tree).toEqual(overlay.tree);
  });

  // overlayfs with index=off copies up one name of a hard-linked file and breaks the link; the
  // copy driver's tree is a plain file system, where both names are the changed file
  test('a known difference: changing a hard-linked file', async () => {
    const overlay = await layers('overlay', ['chmod 600 file']);
    const copy = await layers('copy', ['chmod 600 file']);
    expect(overlay.listing).toEqual(['file']);
    expect(copy.listing).toEqual(['file', 'file.hard']);
  });
});

// rootless hoist mounts overlayfs inside a user namespace with userxattr: its bookkeeping (opaque
// dirs) lives in user.overlay.* instead of trusted.overlay.*; root may mount that way too
describe('overlay with user xattrs (as rootless hoist mounts it): the same layers', () => {
  test.each(CASES)('$name', async ({ steps }) => {
    const trusted = await layers('overlay', steps);
    const user = await layers('overlay', steps, 'user');
    expect(user.snaps.overlayXattrs).toBe('user');
    expect(user.listing).toEqual(trusted.listing);
    expect(user.digests).toEqual(trusted.digests);
    expect(user.tree).toEqual(trusted.tree);
    // and the layers' blobs unpack (whiteouts, opaque markers) into the same tree
    const again = await Snapshotter.open({ root: await tmpdir('user-snaps-'), blobs: user.snaps.blobs, overlayXattrs: 'user' });
    for (const d of user.descs) await again.ensureLayer(d);
    const out = await tmpdir('user-export-');
    await again.exportTree(user.descs.map((d) => d.diffId), out);
    expect(normaliseLinks(await describeTree(out))).toEqual(trusted.tree);
  });

  test('an opaque dir of a layer is marked with user.overlay.opaque only', async () => {
    const user = await layers('overlay', ['rm -rf d && mkdir d && touch d/new'], 'user');
    const again = await Snapshotter.open({ root: await tmpdir('user-snaps-'), blobs: user.snaps.blobs, overlayXattrs: 'user' });
    for (const d of user.descs) await again.ensureLayer(d);
    const rec = await again.layout.record(user.descs.at(-1)!.diffId);
    const x = await readXattrsTree(path.join(again.layout.links, rec!.link!, 'd'));
    const names = [...(x.values().next().value?.keys() ?? [])];
    expect(names).toEqual(['user.overlay.opaque']);
  });
});

describe('diffTrees', () => {
  async function pair(): Promise<{ base: string; next: string; stamps: TreeStamps }> {
    const dir = await tmpdir('diff-');
    const base = path.join(dir, 'base');
    await fsp.mkdir(base);
    sh('mkdir -p d/sub && echo 1 > d/f && echo 2 > d/sub/g && printf abc > same', { cwd: base });
    sh('cp -a base next', { cwd: dir });
    return { base, next: path.join(dir, 'next'), stamps: await stampTree(path.join(dir, 'next'), dir) };
  }
  async function diff(base: string, next: string, stamps?: TreeStamps): Promise<string[]> {
    const names: string[] = [];
    const entries = diffTrees(base, next, await readXattrsTree(base), await readXattrsTree(next), stamps ? { stamps } : {});
    for await (const e of entries) names.push(e.kind === 'opaque' ? `${e.dir}/.wh..wh..opq` : e.kind === 'whiteout' ? `-${e.name}` : e.name);
    return names;
  }
  const rewrite = `${REF} && printf xyz > same && touch -r "$r" same && rm "$r"`;

  test('stamps cover the tree', async () => {
    const { next, stamps } = await pair();
    expect([...stamps.entries.keys()].sort()).toEqual(['d', 'd/f', 'd/sub', 'd/sub/g', 'same']);
    expect(stamps.racyFrom).toBeGreaterThanOrEqual(stamps.entries.get('same')!.ctimeNs);
    expect(stamps.entries.get('d')!.ino).toBe((await fsp.lstat(path.join(next, 'd'), { bigint: true })).ino);
  });

  test('nothing changed, with stamps, with every stamp racy and without stamps: nothing', async () => {
    const { base, next, stamps } = await pair();
    expect(await diff(base, next, stamps)).toEqual([]);
    expect(await diff(base, next, { ...stamps, racyFrom: 0n })).toEqual([]);
    expect(await diff(base, next)).toEqual([]);
  });

  test('a rewrite keeping size and mtime is found by ctime, and by content where ctime cannot tell', async () => {
    const { base, next, stamps } = await pair();
    sh(rewrite, { cwd: next });
    expect(await diff(base, next, stamps)).toEqual(['same']);
    expect(await diff(base, next, { ...stamps, racyFrom: 0n })).toEqual(['same']);
    expect(await diff(base, next)).toEqual(['same']);
  });

  test('a dir made again on the same inode number is told apart by its birth time', async () => {
    const { base, next, stamps } = await pair();
    const d = stamps.entries.get('d')!;
    const fake = new Map(stamps.entries).set('d', { ...d, birthtimeNs: d.birthtimeNs - 1n });
    expect(await diff(base, next, { ...stamps, entries: fake, btime: true })).toEqual(['d', 'd/.wh..wh..opq', 'd/f', 'd/sub', 'd/sub/g']);
    expect(await diff(base, next, { ...stamps, entries: fake, btime: false })).toEqual([]);
  });
});
