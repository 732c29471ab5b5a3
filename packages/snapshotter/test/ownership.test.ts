/**
 * The no-privilege mode's ownership record (issue 10): who owns what in a tree the builder
 * cannot chown, filled from layer headers, read by the tar writer, compared by the copy diff.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { applyLayer, diffTrees, encodeHeader, Ownership, readTar, ByteSource, tarBytes, SnapshotError, type LayerEntry, type TarHeader } from '@hoist/snapshotter';
import { tmpdir } from './helpers.js';

/** A tar of headers only (files are empty). */
function tarOf(members: Array<Partial<TarHeader> & { name: string }>): Buffer {
  const parts = members.map((m) => encodeHeader({ type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 1, ...m } as TarHeader));
  return Buffer.concat([...parts, Buffer.alloc(1024)]);
}

async function* one(b: Buffer): AsyncGenerator<Buffer> {
  yield b;
}

async function tarOwners(entries: LayerEntry[], opts: Parameters<typeof tarBytes>[1]): Promise<string[]> {
  async function* gen(): AsyncGenerator<LayerEntry> {
    yield* entries;
  }
  const chunks: Buffer[] = [];
  for await (const b of tarBytes(gen(), opts)) chunks.push(b);
  const out: string[] = [];
  for await (const e of readTar(new ByteSource(one(Buffer.concat(chunks)), 1 << 20))) {
    out.push(`${e.name} ${e.uid}:${e.gid}`);
    for await (const _ of e.body()) void _;
  }
  return out;
}

describe('Ownership', () => {
  test('names only what is not 0:0; removeTree forgets a path and what is below it, not its siblings', () => {
    const o = new Ownership([
      ['home/bob', { uid: 1000, gid: 1000 }],
      ['home/bob/f', { uid: 1000, gid: 1000 }],
      ['home/bobby', { uid: 7, gid: 7 }],
      ['etc/shadow', { uid: 0, gid: 42 }],
      ['etc/passwd', { uid: 0, gid: 0 }],
    ]);
    expect(o.size).toBe(4);
    expect(o.get('etc/passwd')).toEqual({ uid: 0, gid: 0 });
    expect(o.has('etc/passwd')).toBe(false);
    o.set('etc/shadow', { uid: 0, gid: 0 });
    expect(o.has('etc/shadow')).toBe(false);
    o.removeTree('home/bob');
    expect(o.entries()).toEqual([['home/bobby', { uid: 7, gid: 7 }]]);
  });

  test('at(prefix) writes below a directory (ADD of an archive into /opt/x)', () => {
    const o = new Ownership([['opt/x/old', { uid: 5, gid: 5 }]]);
    const below = o.at('opt/x');
    below.set('new', { uid: 9, gid: 8 });
    below.removeTree('old');
    expect(below.get('new')).toEqual({ uid: 9, gid: 8 });
    expect(o.entries()).toEqual([['opt/x/new', { uid: 9, gid: 8 }]]);
  });

  test('serialize and parse round-trip (sorted, paths with spaces and quotes); a bad line is STORE_CORRUPT naming the line', () => {
    const o = new Ownership([
      ['z', { uid: 1, gid: 2 }],
      ['a b/"q"', { uid: 42, gid: 43 }],
    ]);
    const text = o.serialize();
    expect(text).toBe('42 43 "a b/\\"q\\""\n1 2 "z"\n');
    expect(Ownership.parse(text).equals(o)).toBe(true);
    let err: unknown;
    try {
      Ownership.parse('1 2 "ok"\nnonsense\n', 'rec');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SnapshotError);
    expect((err as SnapshotError).code).toBe('STORE_CORRUPT');
    expect((err as Error).message).toContain('rec, line 2');
  });
});

describe('applyLayer with an ownership record', () => {
  test("records every member's owner by path; whiteouts, replacements and opaque dirs forget theirs; hard links share the target's", async () => {
    const dir = await tmpdir('own-');
    const owners = new Ownership();
    await applyLayer(
      one(
        tarOf([
          { name: 'etc/', type: 'dir', mode: 0o755 },
          { name: 'etc/shadow', mode: 0o640, gid: 42 },
          { name: 'var/', type: 'dir', mode: 0o755 },
          { name: 'var/mail/', type: 'dir', mode: 0o2775, gid: 8 },
          { name: 'var/mail/bob', uid: 1000, gid: 8 },
          { name: 'home/', type: 'dir', mode: 0o755 },
          { name: 'home/bob/', type: 'dir', mode: 0o755, uid: 1000, gid: 1000 },
          { name: 'home/bob/f', uid: 1000, gid: 1000 },
          { name: 'home/bob/link', type: 'link', linkname: 'home/bob/f' },
          { name: 'gone', uid: 3, gid: 3 },
          { name: 'replaced', uid: 4, gid: 4 },
        ]),
      ),
      dir,
      { whiteouts: 'flat', owners },
    );
    expect(owners.entries()).toEqual([
      ['etc/shadow', { uid: 0, gid: 42 }],
      ['gone', { uid: 3, gid: 3 }],
      ['home/bob', { uid: 1000, gid: 1000 }],
      ['home/bob/f', { uid: 1000, gid: 1000 }],
      ['home/bob/link', { uid: 1000, gid: 1000 }],
      ['replaced', { uid: 4, gid: 4 }],
      ['var/mail', { uid: 0, gid: 8 }],
      ['var/mail/bob', { uid: 1000, gid: 8 }],
    ]);
    await applyLayer(
      one(
        tarOf([
          { name: '.wh.gone' },
          { name: 'home/.wh.bob' },
          { name: 'replaced' }, // now 0:0
          { name: 'var/mail/', type: 'dir', mode: 0o2775, gid: 8 },
          { name: 'var/mail/.wh..wh..opq' },
        ]),
      ),
      dir,
      { whiteouts: 'flat', owners },
    );
    expect(owners.entries()).toEqual([
      ['etc/shadow', { uid: 0, gid: 42 }],
      ['var/mail', { uid: 0, gid: 8 }],
    ]);
    await fsp.rm(dir, { recursive: true, force: true });
  });
});

describe('tarBytes with an ownership record', () => {
  test("files owned by the builder get the recorded owner (0:0 when none); other owners on disk stay", async () => {
    const dir = await tmpdir('own-tar-');
    for (const f of ['mine', 'recorded', 'theirs']) await fsp.writeFile(path.join(dir, f), f);
    await fsp.chown(path.join(dir, 'mine'), 4242, 4243);
    await fsp.chown(path.join(dir, 'recorded'), 4242, 4243);
    await fsp.chown(path.join(dir, 'theirs'), 7, 8);
    const entries: LayerEntry[] = [];
    for (const f of ['mine', 'recorded', 'theirs']) entries.push({ kind: 'node', name: f, abs: path.join(dir, f), st: await fsp.lstat(path.join(dir, f), { bigint: true }) });
    const owners = new Ownership([['recorded', { uid: 1000, gid: 42 }], ['theirs', { uid: 1, gid: 1 }]]);
    expect(await tarOwners(entries, { selfAsRoot: { uid: 4242, gid: 4243 }, owners })).toEqual(['mine 0:0', 'recorded 1000:42', 'theirs 7:8']);
    await fsp.rm(dir, { recursive: true, force: true });
  });
});

describe('diffTrees with ownership records', () => {
  test('a chown that left nothing on disk (only the record changed) is a change; an unchanged owner is not', async () => {
    const base = await tmpdir('own-base-');
    const next = await tmpdir('own-next-');
    for (const d of [base, next]) {
      await fsp.writeFile(path.join(d, 'chowned'), 'x');
      await fsp.writeFile(path.join(d, 'kept'), 'y');
      for (const f of ['chowned', 'kept']) await fsp.utimes(path.join(d, f), 5, 5);
    }
    const before = new Ownership([['kept', { uid: 0, gid: 42 }]]);
    const after = new Ownership([['kept', { uid: 0, gid: 42 }], ['chowned', { uid: 1000, gid: 1000 }]]);
    const names = async (owners?: { base: Ownership; next: Ownership }): Promise<string[]> => {
      const out: string[] = [];
      for await (const e of diffTrees(base, next, new Map(), new Map(), owners ? { owners } : {})) out.push(e.kind === 'node' ? e.name : e.kind);
      return out;
    };
    expect(await names()).toEqual([]);
    expect(await names({ base: before, next: after })).toEqual(['chowned']);
    await Promise.all([base, next].map((d) => fsp.rm(d, { recursive: true, force: true })));
  });
});
