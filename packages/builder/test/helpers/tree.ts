/**
 * A root filesystem described for comparison: every path with its type, permission bits,
 * owner, size, content hash and link target. Modification times are left out on purpose
 * (see fixtures/conformance/README.md).
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';

export interface TreeEntry {
  type: 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';
  mode: string;
  uid: number;
  gid: number;
  size?: number;
  sha256?: string;
  link?: string;
  /** Major/minor of device nodes. */
  rdev?: number;
  /** Modification time in whole seconds (not compared unless a case asks for it). */
  mtime?: number;
  /** Text of small files, for expectations (not compared: sha256 is). */
  content?: string;
  /** Hard-link count and inode of regular files (compared only where a case asks for it). */
  nlink?: number;
  ino?: number;
}

export type Tree = Map<string, TreeEntry>;

async function hashFile(abs: string, size: number): Promise<string> {
  const h = createHash('sha256');
  if (size < 1 << 20) h.update(await fsp.readFile(abs));
  else for await (const c of createReadStream(abs)) h.update(c as Buffer);
  return h.digest('hex');
}

/** Walk `root` (without following symlinks) into a Tree keyed by absolute in-image paths. */
export async function describeTree(root: string): Promise<Tree> {
  const out: Tree = new Map();
  const walk = async (dir: string, rel: string): Promise<void> => {
    const names = (await fsp.readdir(dir)).sort();
    await Promise.all(
      names.map(async (n) => {
        const abs = path.join(dir, n);
        const p = `${rel}/${n}`;
        const st = await fsp.lstat(abs);
        const e: TreeEntry = { type: 'file', mode: (st.mode & 0o7777).toString(8).padStart(4, '0'), uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000) };
        if (st.isDirectory()) e.type = 'dir';
        else if (st.isSymbolicLink()) {
          e.type = 'symlink';
          e.link = await fsp.readlink(abs);
          e.mode = '0777';
        } else if (st.isFile()) {
          e.size = st.size;
          e.nlink = st.nlink;
          e.ino = st.ino;
          e.sha256 = await hashFile(abs, st.size);
          if (st.size <= 4096) e.content = await fsp.readFile(abs, 'utf8');
        } else if (st.isCharacterDevice()) {
          e.type = 'char';
          e.rdev = st.rdev;
        } else if (st.isBlockDevice()) {
          e.type = 'block';
          e.rdev = st.rdev;
        } else if (st.isFIFO()) e.type = 'fifo';
        else e.type = 'socket';
        out.set(p, e);
        if (e.type === 'dir') await walk(abs, p);
      }),
    );
  };
  await walk(root, '');
  return new Map([...out.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function show(e: TreeEntry | undefined): string {
  if (!e) return '(absent)';
  const parts = [e.type, e.mode, `${e.uid}:${e.gid}`];
  if (e.size !== undefined) parts.push(`${e.size}B`, e.sha256!.slice(0, 12));
  if (e.link !== undefined) parts.push(`-> ${e.link}`);
  if (e.rdev !== undefined) parts.push(`rdev ${e.rdev}`);
  return parts.join(' ');
}

/** Differences between two trees, one line per path, skipping paths `ignore` accepts. */
export function diffTrees(reference: Tree, ours: Tree, ignore: (p: string, ref: TreeEntry | undefined, ours: TreeEntry | undefined) => boolean = () => false): string[] {
  const out: string[] = [];
  const paths = new Set([...reference.keys(), ...ours.keys()]);
  for (const p of [...paths].sort()) {
    const a = reference.get(p);
    const b = ours.get(p);
    if (show(a) === show(b)) continue;
    if (ignore(p, a, b)) continue;
    out.push(`${p}: reference ${show(a)} | hoist ${show(b)}`);
  }
  return out;
}
