/**
 * The README's first steps on a fresh clone (issue 12): `bash scripts/setup.sh` then
 * `npx hoist`. The documented command must run this project's CLI (npm links
 * node_modules/.bin/hoist to the checked-in launcher at install time, before anything is built),
 * and setup.sh must leave the clone unmodified (package-lock.json included) and never stop a
 * system service (a user's own registry on :5000). Clones the committed HEAD.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { run, tempDir, REPO_ROOT } from '@hoist/testkit';

describe('a fresh clone: setup.sh, then npx hoist', () => {
  let work: string;
  let clone: string;
  let calls: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    work = await tempDir('fresh-clone');
    clone = path.join(work, 'hoist');
    const c = await run('git', ['clone', '-q', REPO_ROOT, clone]);
    if (c.code !== 0) throw new Error(c.stderr);
    // a systemctl that only records how it was called
    const bin = path.join(work, 'bin');
    calls = path.join(work, 'systemctl-calls');
    await fsp.mkdir(bin);
    await fsp.writeFile(path.join(bin, 'systemctl'), `#!/bin/sh\necho "$*" >> ${calls}\nexit 0\n`, { mode: 0o755 });
    // npm may take packages from its cache (the locked versions, verified by integrity)
    env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}`, npm_config_prefer_offline: 'true' };
  }, 60_000);

  afterAll(async () => {
    if (work) await fsp.rm(work, { recursive: true, force: true });
  });

  it('setup.sh installs and builds, leaves the clone unmodified and stops no service', async () => {
    const r = await run('bash', ['scripts/setup.sh'], { cwd: clone, env });
    expect(r.stderr).not.toMatch(/npm ERR!/);
    expect(r.code).toBe(0);
    const status = await run('git', ['status', '--porcelain'], { cwd: clone });
    expect(status.stdout).toBe('');
    const systemctl = await fsp.readFile(calls, 'utf8').catch(() => '');
    expect(systemctl).not.toMatch(/\bstop\b/);
  }, 600_000);

  it('npx hoist runs this project\'s CLI (the local bin, nothing fetched)', async () => {
    const link = await fsp.readlink(path.join(clone, 'node_modules', '.bin', 'hoist'));
    expect(link).toBe('../@hoist/cli/bin/hoist');
    // --no: npx must not install anything; it fails unless the local bin exists
    const v = await run('npx', ['--no', 'hoist', 'version'], { cwd: clone, env });
    expect(v.stdout).toBe('hoist 0.1.0\n');
    expect(v.code).toBe(0);
    const help = await run('npx', ['--no', 'hoist', 'build', '--help'], { cwd: clone, env });
    expect(help.stdout).toContain('--metadata-file');
  }, 60_000);
});
