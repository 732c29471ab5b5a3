/**
 * Hard links inside one copied source (BuildKit's copier keeps them, per match): the first name
 * of a multiply-linked file is copied, the later names become links to that copy, so the layer
 * holds one file and tar hard-link entries.
 */
import { promises as fsp } from 'node:fs';
import type { SourceEntry } from './sources.js';

/** Source inode (`dev:ino`) -> where its first name was copied. */
export type HardLinks = Map<string, string>;

async function inodeKey(e: SourceEntry): Promise<string | undefined> {
  if (e.stat.nlink < 2) return undefined;
  // inode numbers can exceed 2^53: read them exactly
  const st = await fsp.lstat(e.abs, { bigint: true });
  return `${st.dev}:${st.ino}`;
}

/** Links `target` to the copy of an earlier name of the same file; false when there is none. */
export async function linkToCopied(links: HardLinks, e: SourceEntry, target: string): Promise<boolean> {
  const key = await inodeKey(e);
  const first = key === undefined ? undefined : links.get(key);
  if (first === undefined) return false;
  await fsp.link(first, target);
  return true;
}

/** Records where a multiply-linked file was copied, for its later names. */
export async function noteCopied(links: HardLinks, e: SourceEntry, target: string): Promise<void> {
  const key = await inodeKey(e);
  if (key !== undefined) links.set(key, target);
}
