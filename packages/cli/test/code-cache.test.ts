/**
 * The bundle's launcher (packages/cli/src/launcher.ts) runs the CLI through a V8 code cache
 * kept per command in $XDG_CACHE_HOME/hoist/code-cache (issue 16). What it does is observed
 * through HOIST_DEBUG_CODE_CACHE=1 and the files it leaves, never through time.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { hoist, tempDir } from '@hoist/testkit';

describe('code cache of the bundled CLI', () => {
  let home: string;
  let dir: string;
  const env = (): NodeJS.ProcessEnv => ({ XDG_CACHE_HOME: home, HOIST_DEBUG_CODE_CACHE: '1', HOIST_CODE_CACHE: '' });
  const version = () => hoist(['version'], { env: env() });
  const files = async (): Promise<string[]> => (await fsp.readdir(dir).catch(() => [] as string[])).sort();

  beforeEach(async () => {
    home = await tempDir('code-cache');
    dir = path.join(home, 'hoist', 'code-cache');
  });
  afterEach(async () => {
    await fsp.rm(home, { recursive: true, force: true });
  });

  it('is written by the first run of a command, private, and used by the next', async () => {
    const first = await version();
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^hoist \d+\.\d+\.\d+\n$/);
    expect(first.stderr).toMatch(/code cache: none at .*\/version-[0-9a-f]{16}-v\d+\.\d+\.\d+-\w+\.bin\n/);
    expect(first.stderr).toMatch(/code cache: wrote /);
    const [file] = await files();
    expect(file).toMatch(/^version-/);
    expect((await fsp.stat(dir)).mode & 0o777).toBe(0o700);
    expect((await fsp.stat(path.join(dir, file!))).mode & 0o777).toBe(0o600);
    const second = await version();
    expect(second.stdout).toBe(first.stdout);
    expect(second.stderr).toMatch(/code cache: used /);
    expect(second.stderr).not.toMatch(/wrote/);
  });

  it('keeps one cache per command', async () => {
    expect((await version()).code).toBe(0);
    const help = await hoist(['build', '--help'], { env: env() });
    expect(help.code).toBe(0);
    expect((await files()).map((f) => f.split('-')[0])).toEqual(['build', 'version']);
  });

  it('a damaged cache is rejected by V8, the command runs as usual and the cache is rewritten', async () => {
    expect((await version()).code).toBe(0);
    const file = path.join(dir, (await files())[0]!);
    const bytes = await fsp.readFile(file);
    bytes.fill(0x5a, 16);
    await fsp.writeFile(file, bytes);
    const r = await version();
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^hoist \d+\.\d+\.\d+\n$/);
    expect(r.stderr).toMatch(/code cache: rejected /);
    expect(r.stderr).toMatch(/code cache: wrote /);
    expect((await version()).stderr).toMatch(/code cache: used /);
  });

  it('a cache directory others can write is neither read nor written', async () => {
    expect((await version()).code).toBe(0);
    await fsp.chmod(dir, 0o777);
    const before = await fsp.stat(path.join(dir, (await files())[0]!));
    const r = await version();
    expect(r.code).toBe(0);
    expect(r.stderr).not.toMatch(/code cache: (used|wrote)/);
    expect((await fsp.stat(path.join(dir, (await files())[0]!))).mtimeMs).toBe(before.mtimeMs);
  });

  it('Node options (which may change V8 flags) get a cache of their own', async () => {
    expect((await version()).code).toBe(0);
    const withOptions = await hoist(['version'], { env: { ...env(), NODE_OPTIONS: '--max-old-space-size=512' } });
    expect(withOptions.code).toBe(0);
    expect(withOptions.stderr).toMatch(/code cache: none at .*\/version-[0-9a-f]{16}-v[\d.]+-\w+-o[0-9a-f]{8}\.bin\n/);
    expect((await hoist(['version'], { env: { ...env(), NODE_OPTIONS: '--max-old-space-size=512' } })).stderr).toMatch(/code cache: used /);
    // the plain one is still there and used
    expect((await version()).stderr).toMatch(/code cache: used .*-v[\d.]+-\w+\.bin\n/);
    expect(await files()).toHaveLength(2);
  });

  it('HOIST_CODE_CACHE=off turns it off', async () => {
    const r = await hoist(['version'], { env: { ...env(), HOIST_CODE_CACHE: 'off' } });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(await files()).toEqual([]);
  });

  it('temporaries of killed writers are removed once a minute old, fresh ones are left to their writers', async () => {
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    const old = path.join(dir, 'build-x.1.tmp');
    const fresh = path.join(dir, 'build-x.2.tmp');
    await fsp.writeFile(old, 'x');
    await fsp.writeFile(fresh, 'x');
    const past = new Date(Date.now() - 5 * 60_000);
    await fsp.utimes(old, past, past);
    expect((await version()).code).toBe(0);
    const left = await files();
    expect(left).toContain('build-x.2.tmp');
    expect(left).not.toContain('build-x.1.tmp');
  });

  it('exit codes and errors come through the launcher unchanged', async () => {
    const r = await hoist(['no-such-command'], { env: env() });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown command/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
