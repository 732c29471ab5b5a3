import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

/**
 * A fresh private directory below the store's tmp/ (created on first use), named
 * `<prefix><pid>-<hex>` so that the next hoist start can reclaim it if this process is killed.
 */
export async function makeTempDir(tmpRoot: string, prefix: string): Promise<string> {
  await fsp.mkdir(tmpRoot, { recursive: true });
  const dir = path.join(tmpRoot, `${prefix}${process.pid}-${randomBytes(6).toString('hex')}`);
  await fsp.mkdir(dir, { mode: 0o700 });
  return dir;
}
