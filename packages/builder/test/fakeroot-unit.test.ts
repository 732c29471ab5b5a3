/**
 * RUN's ownership under proot (issue 10): fakeroot's database format, the seed from and the way
 * back into the ownership record, the real daemon's load/save, and the glibc check of the image.
 */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Ownership } from '@hoist/snapshotter';
import { registerTempDir } from '@hoist/testkit';
import { formatFakedDb, inodeKey, parseFakedDb, type FakedEntry } from '../src/sandbox/faked-db.js';
import { chownCreated, inodeOwners, ownersAfterRun, seedFakedDb, userCreator, walkOwners } from '../src/sandbox/fakeroot-owners.js';
import { FakedDaemon } from '../src/sandbox/faked.js';
import { findFakeroot, guestRefusesLib } from '../src/sandbox/fakeroot-guest.js';
import { withoutPreloadNotice } from '../src/sandbox/fakeroot.js';
import { BuildError } from '../src/errors.js';

async function tmp(prefix: string): Promise<string> {
  return registerTempDir(await fsp.mkdtemp(path.join(os.tmpdir(), prefix)));
}

describe("fakeroot's saved database", () => {
  // lines as fakeroot 1.31's faked --save-file writes them (a chowned setuid file, a mknod'ed /dev/null, a dir)
  const text = 'dev=fe00,ino=2408836,mode=104755,uid=42,gid=43,nlink=1,rdev=0\ndev=fe00,ino=2408868,mode=20644,uid=0,gid=0,nlink=1,rdev=259\ndev=fe00,ino=2408883,mode=40755,uid=5,gid=6,nlink=2,rdev=0\n';

  test('parses dev (hex), ino, mode (octal st_mode), ids, nlink, rdev, and writes the same text back', () => {
    const db = parseFakedDb(text);
    expect(db[0]).toEqual({ dev: 0xfe00n, ino: 2408836n, mode: 0o104755, uid: 42, gid: 43, nlink: 1, rdev: 0n });
    expect(db[1]!.rdev).toBe(259n);
    expect(db[2]!.mode).toBe(0o40755);
    expect(formatFakedDb(db)).toBe(text);
  });

  test('a line in another format is a RUNTIME_FAILED naming the line', () => {
    expect(() => parseFakedDb('dev=fe00,ino=1,mode=100644,uid=0,gid=0,nlink=1,rdev=0\ngarbage\n')).toThrow(BuildError);
    expect(() => parseFakedDb('garbage\n')).toThrow(/line 1/);
  });
});

describe('seed and read back', () => {
  let root: string;
  beforeEach(async () => {
    root = await tmp('fr-root-');
    await fsp.mkdir(path.join(root, 'etc'));
    await fsp.mkdir(path.join(root, 'home'));
    for (const f of ['etc/shadow', 'etc/passwd', 'kept', 'moved']) await fsp.writeFile(path.join(root, f), f);
  });
  afterEach(() => fsp.rm(root, { recursive: true, force: true }));

  const st = (rel: string): Promise<{ dev: bigint; ino: bigint }> => fsp.lstat(path.join(root, rel), { bigint: true });

  test('the seed names each recorded path by its inode in the root, with its real mode and the recorded owner; missing paths are left out', async () => {
    const owners = new Ownership([['etc/shadow', { uid: 0, gid: 42 }], ['absent', { uid: 1, gid: 1 }]]);
    const seed = await seedFakedDb(root, owners);
    const s = await st('etc/shadow');
    expect(seed.db).toEqual([{ dev: s.dev, ino: s.ino, mode: 0o100644, uid: 0, gid: 42, nlink: 1, rdev: 0n }]);
    expect([...seed.paths]).toEqual([['etc/shadow', inodeKey(s.dev, s.ino)]]);
  });

  test("after the RUN: chowned new files are found by path, a renamed file keeps its owner, a replaced one is root's", async () => {
    const owners = new Ownership([['kept', { uid: 5, gid: 5 }], ['moved', { uid: 6, gid: 6 }], ['etc/shadow', { uid: 0, gid: 42 }]]);
    const seed = await seedFakedDb(root, owners);
    // what the RUN did: mkdir + chown (recorded), mv moved home/moved, replaced etc/shadow by a new file (not chowned)
    await fsp.mkdir(path.join(root, 'home', 'bob'));
    await fsp.rename(path.join(root, 'moved'), path.join(root, 'home', 'moved'));
    await fsp.rm(path.join(root, 'etc', 'shadow'));
    await fsp.writeFile(path.join(root, 'etc', 'shadow'), 'new');
    const bob = await st('home/bob');
    // faked forgets an inode libfakeroot saw unlinked (the new shadow may reuse its number)
    const shadow = seed.paths.get('etc/shadow');
    const saved: FakedEntry[] = [...seed.db.filter((e) => inodeKey(e.dev, e.ino) !== shadow), { dev: bob.dev, ino: bob.ino, mode: 0o40755, uid: 1000, gid: 1000, nlink: 2, rdev: 0n }];
    const after = await ownersAfterRun(root, seed, saved, owners);
    expect(after.entries()).toEqual([
      ['home/bob', { uid: 1000, gid: 1000 }],
      ['home/moved', { uid: 6, gid: 6 }],
      ['kept', { uid: 5, gid: 5 }],
    ]);
  });

  test('when faked saved what it was loaded with and every path is still its inode, the record stays', async () => {
    const owners = new Ownership([['kept', { uid: 5, gid: 5 }]]);
    const seed = await seedFakedDb(root, owners);
    expect((await ownersAfterRun(root, seed, seed.db, owners)).equals(owners)).toBe(true);
  });
});

describe('a RUN as a non-root USER', () => {
  test("what it creates is its own (the group of a setgid directory's); what existed keeps its owner, also where it was moved", async () => {
    const root = await tmp('fr-user-');
    await fsp.mkdir(path.join(root, 'mail'));
    await fsp.chmod(path.join(root, 'mail'), 0o2775);
    await fsp.writeFile(path.join(root, 'old'), 'o');
    const owners = new Ownership([['mail', { uid: 0, gid: 8 }], ['old', { uid: 7, gid: 7 }]]);
    const before = await inodeOwners(root, owners);
    await fsp.writeFile(path.join(root, 'mine'), 'm');
    await fsp.writeFile(path.join(root, 'mail', 'box'), 'b');
    await fsp.rename(path.join(root, 'old'), path.join(root, 'moved'));
    const after = await walkOwners(root, before, userCreator({ uid: 1001, gid: 1001 }));
    expect(after.entries()).toEqual([
      ['mail', { uid: 0, gid: 8 }],
      ['mail/box', { uid: 1001, gid: 8 }],
      ['mine', { uid: 1001, gid: 1001 }],
      ['moved', { uid: 7, gid: 7 }],
    ]);
    await fsp.rm(root, { recursive: true, force: true });
  });
});

describe('root with --isolation proot, a RUN as a non-root USER', () => {
  test('what it created (as root on disk: proot -i only shows the ids) is given to the user on disk; what existed is left alone', async () => {
    const root = await tmp('fr-rootuser-');
    await fsp.mkdir(path.join(root, 'mail'));
    await fsp.chown(path.join(root, 'mail'), 0, 8);
    await fsp.chmod(path.join(root, 'mail'), 0o2775);
    await fsp.writeFile(path.join(root, 'old'), 'o');
    await fsp.chown(path.join(root, 'old'), 7, 7);
    const before = new Set((await inodeOwners(root, new Ownership())).keys());
    await fsp.writeFile(path.join(root, 'mine'), 'm');
    await fsp.chmod(path.join(root, 'mine'), 0o4755);
    await fsp.mkdir(path.join(root, 'mail', 'sub'));
    await fsp.writeFile(path.join(root, 'mail', 'sub', 'box'), 'b');
    await chownCreated(root, before, { uid: 1001, gid: 1002 });
    const ids = async (rel: string): Promise<string> => {
      const st = await fsp.lstat(path.join(root, rel));
      return `${st.uid}:${st.gid}`;
    };
    expect(await Promise.all(['', 'old', 'mail', 'mine', 'mail/sub', 'mail/sub/box'].map(ids))).toEqual(['0:0', '7:7', '0:8', '1001:1002', '1001:8', '1001:8']);
    expect((await fsp.lstat(path.join(root, 'mine'))).mode & 0o7777).toBe(0o4755);
    await fsp.rm(root, { recursive: true, force: true });
  });
});

const tools = findFakeroot();

describe("fakeroot's daemon (faked-sysv, as installed by scripts/setup.sh)", () => {
  test('is installed', () => {
    expect(tools).toBeDefined();
  });

  test('loads a database and saves it back on stop', async () => {
    const dir = await tmp('fr-daemon-');
    const db: FakedEntry[] = [{ dev: 0xfe00n, ino: 77n, mode: 0o100640, uid: 0, gid: 42, nlink: 1, rdev: 0n }];
    const d = await FakedDaemon.start({ faked: tools!.faked, dir, tmpDir: dir, db });
    expect(d.key).toMatch(/^\d+$/);
    expect(await d.stop()).toEqual(db);
    // its group mark is gone with it
    expect((await fsp.readdir(dir)).filter((n) => n.startsWith('proot-'))).toEqual([]);
    await fsp.rm(dir, { recursive: true, force: true });
  });
});

describe('can the image load the fakeroot library', () => {
  let root: string;
  beforeEach(async () => {
    root = await tmp('fr-guest-');
  });
  afterEach(() => fsp.rm(root, { recursive: true, force: true }));

  test("an image with this host's glibc can; one without glibc (musl, static) cannot, and the reason says so", async () => {
    expect(await guestRefusesLib(root, tools!.lib)).toMatch(/has no glibc \(a musl image such as Alpine/);
    await fsp.mkdir(path.join(root, 'lib', 'x86_64-linux-gnu'), { recursive: true });
    await fsp.copyFile('/lib/x86_64-linux-gnu/libc.so.6', path.join(root, 'lib', 'x86_64-linux-gnu', 'libc.so.6'));
    expect(await guestRefusesLib(root, tools!.lib)).toBeUndefined();
  });

  test('an older glibc (without a version the library needs) cannot: every dynamic program would fail to start', async () => {
    const real = await fsp.readFile('/lib/x86_64-linux-gnu/libc.so.6');
    await fsp.mkdir(path.join(root, 'usr', 'lib64'), { recursive: true });
    // an ELF header of this machine that defines versions only up to GLIBC_2.31 (bullseye)
    await fsp.writeFile(path.join(root, 'usr', 'lib64', 'libc.so.6'), Buffer.concat([real.subarray(0, 64), Buffer.from('\0GLIBC_2.2.5\0GLIBC_2.3.4\0GLIBC_2.4\0GLIBC_2.14\0GLIBC_2.31\0')]));
    expect(await guestRefusesLib(root, tools!.lib)).toMatch(/older than this host's fakeroot library needs \(GLIBC_2\.34\)/);
  });
});

describe('withoutPreloadNotice', () => {
  test("drops proot's own ld.so notice about the guest library (only it, only first), passes everything else", () => {
    const got: string[] = [];
    const f = withoutPreloadNotice('/.hoist-fakeroot/libfakeroot-sysv.so', (b) => got.push(b.toString()));
    f.write(Buffer.from("ERROR: ld.so: object '/.hoist-fakeroot/libfakeroot-sysv.so' from LD_PRELOAD cannot be pre"));
    f.write(Buffer.from('loaded (cannot open shared object file): ignored.\nbuild output\n'));
    f.write(Buffer.from("ERROR: ld.so: object '/.hoist-fakeroot/libfakeroot-sysv.so' from LD_PRELOAD cannot be preloaded\n"));
    f.end();
    expect(got.join('')).toBe("build output\nERROR: ld.so: object '/.hoist-fakeroot/libfakeroot-sysv.so' from LD_PRELOAD cannot be preloaded\n");
    const other: string[] = [];
    const g = withoutPreloadNotice('/x.so', (b) => other.push(b.toString()));
    g.write(Buffer.from('no newline'));
    g.end();
    expect(other).toEqual(['no newline']);
  });
});
