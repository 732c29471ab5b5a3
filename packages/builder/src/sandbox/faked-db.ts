import { BuildError } from '../errors.js';

/**
 * One line of fakeroot's saved database (`faked --save-file`, read back with `--load`): what
 * faked pretends about one inode. fakeroot 1.31 writes
 * `dev=<hex>,ino=<dec>,mode=<octal st_mode>,uid=<dec>,gid=<dec>,nlink=<dec>,rdev=<dec>`.
 */
export interface FakedEntry {
  dev: bigint;
  ino: bigint;
  /** The whole st_mode (type and permission bits), as faked reports it. */
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  rdev: bigint;
}

const LINE = /^dev=([0-9a-f]+),ino=(\d+),mode=([0-7]+),uid=(\d+),gid=(\d+),nlink=(\d+),rdev=(\d+)$/;

export function parseFakedDb(text: string): FakedEntry[] {
  const out: FakedEntry[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (line === '') continue;
    const m = LINE.exec(line);
    if (!m) throw new BuildError('RUNTIME_FAILED', `fakeroot's saved database, line ${i + 1}, is not in the format of fakeroot 1.31: ${JSON.stringify(line.slice(0, 100))}`);
    out.push({ dev: BigInt(`0x${m[1]}`), ino: BigInt(m[2]!), mode: parseInt(m[3]!, 8), uid: Number(m[4]), gid: Number(m[5]), nlink: Number(m[6]), rdev: BigInt(m[7]!) });
  }
  return out;
}

export function formatFakedDb(entries: readonly FakedEntry[]): string {
  return entries.map((e) => `dev=${e.dev.toString(16)},ino=${e.ino},mode=${e.mode.toString(8)},uid=${e.uid},gid=${e.gid},nlink=${e.nlink},rdev=${e.rdev}\n`).join('');
}

/** The key an inode is found by, in faked's database and in lstat results alike. */
export function inodeKey(dev: bigint, ino: bigint): string {
  return `${dev}:${ino}`;
}
