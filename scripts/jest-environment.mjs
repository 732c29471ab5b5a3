// Jest's node environment, plus the removal of the temporary directories a test file made.
// Test helpers register each directory they create (testkit's tempDir and registerTempDir, the
// oci tests' own helper) through the function this environment puts at
// Symbol.for('hoist.registerTempDir'). After the file's last hook has run, each one is removed,
// except one with a mount point at or below it: removing that would delete through the mount,
// so it is left and reported. HOIST_KEEP_TEST_DIRS=1 keeps them all (to look at after a run).
import { promises as fsp } from 'node:fs';
import { TestEnvironment } from 'jest-environment-node';

const REGISTER = Symbol.for('hoist.registerTempDir');

/** Every mount point of this mount namespace (octal escapes of /proc/self/mounts decoded). */
async function mountPoints() {
  const text = await fsp.readFile('/proc/self/mounts', 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => (l.split(' ')[1] ?? '').replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8))));
}

/** Remove `dirs`; returns what could not be removed, with why. */
export async function removeTempDirs(dirs) {
  if (dirs.length === 0) return [];
  const mounts = await mountPoints();
  const left = [];
  for (const dir of dirs) {
    const real = await fsp.realpath(dir).catch(() => undefined);
    if (real === undefined) continue; // already removed by the test
    const under = mounts.filter((m) => m === real || m.startsWith(real + '/'));
    if (under.length > 0) {
      left.push(`${dir}: mount points at or below it (${under.join(', ')})`);
      continue;
    }
    await fsp.rm(real, { recursive: true, force: true, maxRetries: 3 }).catch((e) => left.push(`${dir}: ${e.message}`));
  }
  return left;
}

export default class HoistTestEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    this.tempDirs = new Set();
    this.testPath = context.testPath;
    this.global[REGISTER] = (dir) => void this.tempDirs.add(dir);
  }

  async teardown() {
    try {
      if (!process.env.HOIST_KEEP_TEST_DIRS) {
        const left = await removeTempDirs([...this.tempDirs]);
        for (const l of left) process.stderr.write(`${this.testPath}: temp dir not removed: ${l}\n`);
      }
    } finally {
      await super.teardown();
    }
  }
}
