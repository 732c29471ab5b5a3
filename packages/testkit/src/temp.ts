import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Where the repository's Jest environment (scripts/jest-environment.mjs) takes registrations. */
const REGISTER = Symbol.for('hoist.registerTempDir');

/**
 * Have `dir` removed after the current test file (its last hook has run; never through a mount
 * point below it). Under Jest with the repository's environment only: elsewhere it does nothing
 * and the caller removes what it made. Returns `dir`.
 */
export function registerTempDir(dir: string): string {
  const register = (globalThis as Record<symbol, unknown>)[REGISTER];
  if (typeof register === 'function') (register as (d: string) => void)(dir);
  return dir;
}

/** A fresh directory `$TMPDIR/hoist-<prefix>-XXXXXX`, removed after the test file (registerTempDir). */
export async function tempDir(prefix: string): Promise<string> {
  return registerTempDir(await fsp.mkdtemp(path.join(os.tmpdir(), `hoist-${prefix}-`)));
}
