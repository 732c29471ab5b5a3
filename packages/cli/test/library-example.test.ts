/**
 * The README's "Use it from TypeScript" example (examples/build-hello.ts, included verbatim in
 * README.md) compiled against the published types of @hoist/cli and run from the repository on
 * the real parts: it builds fixtures/hello, tags it, writes an OCI archive; the `hoist build`
 * command then finds every step of the same build cached and gives the same digest.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT, hoist, run, storeWithBusybox, tempDir } from '@hoist/testkit';

const EXAMPLE = path.join(REPO_ROOT, 'examples', 'build-hello.ts');
const HELLO = path.join(REPO_ROOT, 'fixtures', 'hello');

describe('library example (README "Use it from TypeScript")', () => {
  let root: string;
  let work: string;

  beforeAll(async () => {
    [root, work] = await Promise.all([storeWithBusybox(), tempDir('lib-example')]);
  });
  afterAll(async () => {
    await fsp.rm(root, { recursive: true, force: true });
    await fsp.rm(work, { recursive: true, force: true });
  });

  it('the README shows the example file verbatim, and it imports only @hoist/cli', async () => {
    const [readme, example] = await Promise.all([fsp.readFile(path.join(REPO_ROOT, 'README.md'), 'utf8'), fsp.readFile(EXAMPLE, 'utf8')]);
    expect(readme).toContain('## Use it from TypeScript');
    expect(readme).toContain('```ts\n' + example + '```');
    const imports = [...example.matchAll(/from\s+'([^']+)'/g)].map((m) => m[1]);
    expect(imports).toEqual(['@hoist/cli']);
    expect(example.split('\n').length).toBeLessThanOrEqual(25);
  });

  it('compiles against the package types and builds fixtures/hello as `hoist build` does', async () => {
    const tsc = await run(process.execPath, [path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(REPO_ROOT, 'examples')]);
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.code).toBe(0);

    const archive = path.join(work, 'hello.oci.tar');
    const ex = await run(process.execPath, [path.join(REPO_ROOT, 'examples', 'dist', 'build-hello.js'), HELLO, archive], { cwd: work, env: { ...process.env, HOIST_ROOT: root } });
    expect(ex.stderr).toContain('exported oci to');
    expect(ex.code).toBe(0);
    const m = /^(sha256:[0-9a-f]{64}) docker\.io\/library\/hello:ts \((\d+) steps run, 0 cached\)\n$/.exec(ex.stdout);
    expect(m).not.toBeNull();
    const digest = m![1]!;
    expect(Number(m![2])).toBeGreaterThan(0);
    expect(ex.stderr).toMatch(/^done +\[stage-0 \d+\/\d+\] RUN echo "built by hoist/m);

    // the archive is an OCI layout whose index names the image
    const index = await run('tar', ['-xOf', archive, 'index.json']);
    expect((JSON.parse(index.stdout) as { manifests: Array<{ digest: string }> }).manifests.map((d) => d.digest)).toContain(digest);

    // the CLI uses the same store, cache and wiring: nothing runs again, same image
    const cli = await hoist(['build', '--root', root, '--progress', 'plain', '-t', 'hello:cli', HELLO]);
    expect(cli.code).toBe(0);
    expect(cli.stdout.trim()).toBe(digest);
    expect(cli.stderr).toMatch(/\(0 steps run, \d+ cached\)/);
    const images = await hoist(['images', '--root', root, '--json']);
    expect(JSON.parse(images.stdout)).toEqual(expect.arrayContaining([expect.objectContaining({ ref: 'docker.io/library/hello:ts', digest })]));
  });
});
