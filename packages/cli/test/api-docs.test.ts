/**
 * `npm run docs` (typedoc over every published package) runs, and the library entry point is
 * documented from its TSDoc: `build` in @hoist/cli with its summary and its options type.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT, run, tempDir } from '@hoist/testkit';

interface Reflection {
  name: string;
  children?: Reflection[];
  signatures?: Array<{ comment?: { summary?: Array<{ text: string }> } }>;
}

describe('API docs (typedoc)', () => {
  let out: string;
  beforeAll(async () => {
    out = await tempDir('api-docs');
  });
  afterAll(async () => {
    await fsp.rm(out, { recursive: true, force: true });
  });

  it('typedoc converts every package without errors and documents build() of @hoist/cli', async () => {
    const json = path.join(out, 'api.json');
    const r = await run(process.execPath, [path.join(REPO_ROOT, 'node_modules', 'typedoc', 'bin', 'typedoc'), '--json', json], { cwd: REPO_ROOT });
    expect(r.stdout + r.stderr).toMatch(/Found 0 errors/);
    expect(r.code).toBe(0);
    const api = JSON.parse(await fsp.readFile(json, 'utf8')) as Reflection;
    expect(api.children?.map((c) => c.name).sort()).toEqual(['@hoist/builder', '@hoist/cache', '@hoist/cli', '@hoist/exporter', '@hoist/oci', '@hoist/parser', '@hoist/registry-client', '@hoist/snapshotter']);
    const cli = api.children!.find((c) => c.name === '@hoist/cli')!;
    const build = cli.children?.find((c) => c.name === 'build');
    const summary = build?.signatures?.[0]?.comment?.summary?.map((s) => s.text).join('') ?? '';
    expect(summary).toContain('the way `hoist build` does');
    expect(cli.children?.map((c) => c.name)).toEqual(expect.arrayContaining(['BuildRequest', 'BuildSummary', 'openStore', 'storeRoot']));
  });
});
