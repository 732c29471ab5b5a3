/**
 * The packages can be published and installed (issue 14): not private, one version, `exports`
 * with types, `files` that ship the compiled code and its declarations (and nothing of the
 * tests), @hoist dependencies pinned to that version. `npm pack --dry-run` lists what a
 * publish would upload (nothing is uploaded).
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT, run } from '@hoist/testkit';

const PUBLISHED = ['oci', 'parser', 'snapshotter', 'registry-client', 'builder', 'exporter', 'cache', 'cli'];

interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  files?: string[];
  types?: string;
  exports?: Record<string, { types?: string; default?: string }>;
  dependencies?: Record<string, string>;
}

const manifest = async (p: string): Promise<Manifest> => JSON.parse(await fsp.readFile(path.join(REPO_ROOT, 'packages', p, 'package.json'), 'utf8')) as Manifest;

describe('publishable packages', () => {
  it('are public, share one version, export typed entry points and pin each other to it', async () => {
    const all = await Promise.all(PUBLISHED.map(manifest));
    const version = all[0]!.version;
    for (const m of all) {
      expect({ name: m.name, private: m.private ?? false, version: m.version }).toEqual({ name: m.name, private: false, version });
      expect(m.files).toEqual(expect.arrayContaining(['dist']));
      expect(m.types).toBe('dist/index.d.ts');
      for (const [sub, target] of Object.entries(m.exports ?? {})) {
        expect({ sub, types: target.types?.endsWith('.d.ts'), js: target.default?.endsWith('.js') }).toEqual({ sub, types: true, js: true });
      }
      for (const [dep, range] of Object.entries(m.dependencies ?? {})) {
        if (dep.startsWith('@hoist/')) expect(`${m.name} -> ${dep}@${range}`).toBe(`${m.name} -> ${dep}@${version}`);
      }
    }
  });

  it('npm pack ships the compiled entry points and no tests', async () => {
    const r = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts', ...PUBLISHED.flatMap((p) => ['-w', `packages/${p}`])], { cwd: REPO_ROOT });
    expect(r.code).toBe(0);
    const packs = JSON.parse(r.stdout) as Array<{ name: string; files: Array<{ path: string }> }>;
    expect(packs.map((p) => p.name).sort()).toEqual(PUBLISHED.map((p) => `@hoist/${p}`).sort());
    for (const p of packs) {
      const files = p.files.map((f) => f.path);
      expect({ name: p.name, has: ['dist/index.js', 'dist/index.d.ts', 'package.json'].filter((f) => files.includes(f)) }).toEqual({ name: p.name, has: ['dist/index.js', 'dist/index.d.ts', 'package.json'] });
      expect(files.filter((f) => f.startsWith('test/') || f.endsWith('.test.ts') || f.endsWith('.tsbuildinfo'))).toEqual([]);
    }
  });
});
