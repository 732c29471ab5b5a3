import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ImageStore, type Digest } from '@hoist/oci';
import { Snapshotter, type Driver, type Mounted, type OverlayXattrs, type SnapshotErrorCode } from '@hoist/snapshotter';
import { registerTempDir } from '@hoist/testkit';

/** The `zstd` binary (Debian package zstd) is optional: zstd tests skip without it. */
export const HAS_ZSTD = spawnSync('zstd', ['--version']).status === 0;

export const FIXTURES = path.resolve(process.cwd(), 'fixtures', 'layers');

/** The crafted layers of fixtures/layers/ and the error code that refuses each (extraction and checkLayer alike). */
export const HOSTILE_LAYERS: Array<[string, SnapshotErrorCode]> = [
  ['dotdot.tar', 'LAYER_UNSAFE_PATH'],
  ['absolute.tar', 'LAYER_UNSAFE_PATH'],
  ['pax-dotdot.tar', 'LAYER_UNSAFE_PATH'],
  ['symlink-escape.tar', 'LAYER_UNSAFE_PATH'],
  ['symlink-absolute.tar', 'LAYER_UNSAFE_PATH'],
  ['symlink-chain.tar', 'LAYER_UNSAFE_PATH'],
  ['hardlink-escape.tar', 'LAYER_UNSAFE_PATH'],
  ['hardlink-absolute.tar', 'LAYER_UNSAFE_PATH'],
  ['hardlink-via-symlink.tar', 'LAYER_UNSAFE_PATH'],
  ['whiteout-dotdot.tar', 'LAYER_UNSAFE_PATH'],
  ['oversized-pax.tar', 'LAYER_TOO_LARGE'],
  ['long-name.tar', 'LAYER_TOO_LARGE'],
  ['bad-checksum.tar', 'LAYER_INVALID'],
  ['truncated.tar', 'LAYER_INVALID'],
];

let base: Promise<string> | undefined;

/**
 * A fresh dir below this test file's `$TMPDIR/hoist-snapshotter-XXXXXX` (one per file: Jest loads
 * this module once per file), which is removed after the file unless a mount point is left below
 * it (testkit's registerTempDir; HOIST_KEEP_TEST_DIRS=1 keeps it).
 */
export async function tmpdir(prefix = 'snap-'): Promise<string> {
  base ??= fsp.mkdtemp(path.join(os.tmpdir(), 'hoist-snapshotter-')).then(registerTempDir);
  return fsp.mkdtemp(path.join(await base, prefix));
}

export function sh(cmd: string, opts: { cwd?: string } = {}): string {
  return execFileSync('sh', ['-c', cmd], { cwd: opts.cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 256 * 1024 * 1024 });
}

export async function openStore(driver?: Driver, overlayXattrs?: OverlayXattrs): Promise<{ dir: string; store: ImageStore; snaps: Snapshotter }> {
  const dir = await tmpdir('store-');
  const store = await ImageStore.open(dir);
  const snaps = await Snapshotter.open({ root: path.join(dir, 'snapshots'), blobs: store.blobs, ...(driver ? { driver } : {}), ...(overlayXattrs ? { overlayXattrs } : {}) });
  return { dir, store, snaps };
}

/** Run `fn` on a fresh mount of `lowers`, always releasing it. */
export async function withMount<T>(snaps: Snapshotter, lowers: readonly Digest[], fn: (m: Mounted) => Promise<T>): Promise<T> {
  const m = await snaps.mount(lowers);
  try {
    return await fn(m);
  } finally {
    await m.release();
  }
}

export interface NodeInfo {
  type: string;
  mode: string;
  uid: number;
  gid: number;
  size?: number;
  sha256?: string;
  link?: string;
  rdev?: string;
  xattrs?: Record<string, string>;
  /** For hard-linked files: the first path (sorted) of the inode. */
  hardlinkOf?: string;
}

/** Everything a layer must preserve about a tree (no times): path -> facts. */
export async function describeTree(root: string, opts: { ignoreXattrs?: RegExp } = {}): Promise<Record<string, NodeInfo>> {
  const out: Record<string, NodeInfo> = {};
  const inodes = new Map<string, string>();
  const xattrs = new Map<string, Record<string, string>>();
  const dump = execFileSync('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', root], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  let cur: Record<string, string> | undefined;
  for (const line of dump.split('\n')) {
    if (line.startsWith('# file: ')) {
      cur = {};
      xattrs.set(line.slice(8).replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(Number.parseInt(o, 8))), cur);
    } else if (cur && line.includes('=')) {
      const [k, v] = [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)];
      if (!k.startsWith('trusted.overlay.') && !(opts.ignoreXattrs && opts.ignoreXattrs.test(k))) cur[k] = v;
    }
  }
  async function walk(rel: string): Promise<void> {
    const abs = rel ? path.join(root, rel) : root;
    const names = (await fsp.readdir(abs)).sort();
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n;
      const p = path.join(root, r);
      const st = await fsp.lstat(p);
      const info: NodeInfo = { type: '?', mode: (st.mode & 0o7777).toString(8), uid: st.uid, gid: st.gid };
      if (st.isFile()) {
        info.type = 'file';
        info.size = st.size;
        info.sha256 = createHash('sha256').update(await fsp.readFile(p)).digest('hex');
      } else if (st.isDirectory()) info.type = 'dir';
      else if (st.isSymbolicLink()) {
        info.type = 'symlink';
        info.link = await fsp.readlink(p);
        delete (info as Partial<NodeInfo>).mode;
      } else if (st.isCharacterDevice()) {
        info.type = 'char';
        info.rdev = String(st.rdev);
      } else if (st.isBlockDevice()) {
        info.type = 'block';
        info.rdev = String(st.rdev);
      } else if (st.isFIFO()) info.type = 'fifo';
      else if (st.isSocket()) info.type = 'socket';
      if (!st.isDirectory() && st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        const first = inodes.get(key);
        if (first) info.hardlinkOf = first;
        else inodes.set(key, r);
      }
      const x = xattrs.get(p);
      if (x && Object.keys(x).length > 0) info.xattrs = x;
      out[r] = info;
      if (st.isDirectory()) await walk(r);
    }
  }
  await walk('');
  return out;
}

/** Hard-link groups compare by membership, not by which path came first. */
export function normaliseLinks(t: Record<string, NodeInfo>): Record<string, NodeInfo> {
  const groups = new Map<string, string[]>();
  for (const [p, i] of Object.entries(t)) if (i.hardlinkOf) groups.set(i.hardlinkOf, [...(groups.get(i.hardlinkOf) ?? [i.hardlinkOf]), p]);
  const out: Record<string, NodeInfo> = {};
  for (const [p, i] of Object.entries(t)) {
    const { hardlinkOf, ...rest } = i;
    const g = groups.get(hardlinkOf ?? p);
    out[p] = g ? { ...rest, hardlinkOf: g.sort().join(',') } : rest;
  }
  return out;
}

export async function exists(p: string): Promise<boolean> {
  return fsp.access(p).then(
    () => true,
    () => false,
  );
}
