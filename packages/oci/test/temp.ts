// The oci tests cannot import @hoist/testkit (it depends on oci): this is its registerTempDir.
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * A fresh directory `$TMPDIR/<prefix>XXXXXX`, registered with the repository's Jest environment
 * (scripts/jest-environment.mjs), which removes it after the test file.
 */
export async function tmpDir(prefix: string): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  const register = (globalThis as Record<symbol, unknown>)[Symbol.for('hoist.registerTempDir')];
  if (typeof register === 'function') (register as (d: string) => void)(dir);
  return dir;
}
