import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from './temp.js';
import { run } from './tools.js';

/** The repository root (testkit lives at packages/testkit/{src,dist}). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const HOIST_BIN = path.join(REPO_ROOT, 'packages', 'cli', 'bundle', 'hoist.js');
/** shared/ sits beside the clone, in CI and on developer machines. */
export const SHARED_DIR = path.resolve(REPO_ROOT, '..', 'shared');

/** Run the built `hoist` CLI. */
export function hoist(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}) {
  return run(process.execPath, [HOIST_BIN, ...args], { ...opts, env: { ...process.env, NO_COLOR: '1', ...(opts.env ?? {}) } });
}

/** A fresh store with busybox:latest imported from Debian's busybox-static (offline). */
export async function storeWithBusybox(): Promise<string> {
  const root = await tempDir('store');
  const r = await run('bash', [path.join(REPO_ROOT, 'fixtures', 'base', 'busybox.sh'), '--root', root]);
  if (r.code !== 0) throw new Error(`busybox.sh failed: ${r.stderr}`);
  return root;
}

/** Mount points below `dir` (from /proc/mounts), to prove a build left none behind. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const text = await fsp.readFile('/proc/mounts', 'utf8');
  return text
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .map((p) => p.replace(/\\040/g, ' '))
    .filter((p) => p === dir || p.startsWith(dir + '/'));
}
