/**
 * Start-up (issue 16). The bundle (packages/cli/bundle/hoist.cjs) is one CommonJS file: the
 * modules main.js imports statically run at every start; every other module is a lazy
 * initialiser (esbuild's __esm / __commonJS wrapper, keyed by its source path) that runs only
 * when a command imports it. Counted, not timed: a preload records each initialiser that runs
 * (the wrappers look their key up with Object.getOwnPropertyNames) and the built-in modules Node
 * loaded (process.moduleLoadList); the modules that always run are the bundle's inputs
 * (esbuild's metafile, bundle/meta.json) that have no wrapper.
 *
 * `hoist version` must not run the registry client, the tar codec, compression or the progress
 * renderer; a fully cached build from the local store runs neither the registry client, the
 * cache import/export package, the progress renderer nor the attestation code.
 */
import { promises as fsp, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { HOIST_BIN, REPO_ROOT, hoist, run, storeWithBusybox, tempDir } from '@hoist/testkit';

interface Ran {
  /** sources whose top-level code ran (always-run ones and lazy initialisers that ran) */
  sources: string[];
  builtins: string[];
  stdout: string;
}

const PRELOAD = `
const names = Object.getOwnPropertyNames;
const ran = new Set();
Object.getOwnPropertyNames = function (o) {
  const r = names(o);
  if (r.length === 1 && typeof o[r[0]] === 'function' && /^(packages|node_modules)\\//.test(r[0])) ran.add(r[0]);
  return r;
};
process.on('exit', () => {
  for (const s of ran) process.stderr.write('RAN ' + s + '\\n');
  for (const m of process.moduleLoadList) if (m.startsWith('NativeModule ')) process.stderr.write('BUILTIN node:' + m.slice(13) + '\\n');
});
`;

const BUNDLE = path.join(path.dirname(HOIST_BIN), 'hoist.cjs');

/** The bundle's sources that are not behind a lazy initialiser: they run at every start. */
function alwaysRun(): string[] {
  const meta = JSON.parse(readFileSync(path.join(path.dirname(HOIST_BIN), 'meta.json'), 'utf8')) as { outputs: Record<string, { inputs: Record<string, unknown> }> };
  const inputs = Object.keys(meta.outputs['packages/cli/bundle/hoist.cjs']?.inputs ?? {});
  const text = readFileSync(BUNDLE, 'utf8');
  const wrapped = new Set([...text.matchAll(/^\s*"((?:packages|node_modules)\/[^"]+)"\(/gm)].map((m) => m[1]));
  return inputs.filter((s) => !wrapped.has(s));
}

async function ranFor(args: string[], work: string): Promise<Ran> {
  const preload = path.join(work, 'preload.cjs');
  await fsp.writeFile(preload, PRELOAD);
  // quiet, plain: what CI runs (no terminal), so no renderer is wanted
  const r = await run(process.execPath, ['-r', preload, HOIST_BIN, ...args]);
  expect(r.code).toBe(0);
  const lines = r.stderr.split('\n');
  const lazy = lines.filter((l) => l.startsWith('RAN ')).map((l) => l.slice(4));
  return {
    sources: [...alwaysRun(), ...lazy],
    builtins: lines.filter((l) => l.startsWith('BUILTIN ')).map((l) => l.slice(8)),
    stdout: r.stdout,
  };
}

describe('start-up: what a command runs', () => {
  let work: string;
  beforeAll(async () => {
    work = await tempDir('startup');
  });
  afterAll(async () => {
    await fsp.rm(work, { recursive: true, force: true });
  });

  it('the bundle holds the whole CLI, most of it behind lazy initialisers', () => {
    const always = alwaysRun();
    expect(always).toContain('packages/cli/dist/main.js');
    expect(always.some((s) => s.startsWith('packages/builder/'))).toBe(false);
  });

  it('`hoist version` runs neither the registry client, tar, compression nor the progress renderer', async () => {
    const l = await ranFor(['version'], work);
    expect(l.stdout).toMatch(/^hoist \d+\.\d+\.\d+\n$/);
    const heavy = l.sources.filter((s) => /registry-client\/|snapshotter\/(dist|src)\/tar\/|tty-progress|\/builder\/|\/exporter\/|\/cache\/(dist|src)\//.test(s));
    expect(heavy).toEqual([]);
    // the preload saw Node's modules: the list below is real
    expect(l.builtins).toContain('node:fs');
    expect(l.builtins.filter((b) => /^node:(zlib|https|http|tls|crypto|child_process)$/.test(b))).toEqual([]);
  });

  it('`hoist version` runs of our own code only main, its error classes and the pipe guard', async () => {
    const l = await ranFor(['version'], work);
    const ours = l.sources.filter((s) => /^packages\//.test(s));
    expect(ours.map((s) => path.basename(s)).sort()).toEqual(['errors.js', 'main.js', 'pipes.js']);
  });

  it('a fully cached build runs neither the registry client, the cache package, the progress renderer nor the attestation code', async () => {
    const root = await storeWithBusybox();
    try {
      const args = ['build', '--root', root, '--progress', 'plain', '-t', 'hello:1', path.join(REPO_ROOT, 'fixtures', 'hello')];
      expect((await hoist(args)).code).toBe(0);
      const l = await ranFor(args, work);
      // it did build (from the cache) and the preload saw the builder
      expect(l.sources).toContain('packages/builder/dist/build.js');
      expect(l.sources.filter((s) => /registry-client\/|\/cache\/(dist|src)\/|tty-progress/.test(s))).toEqual([]);
      // nor the attestation code: no attestations go to the local store
      expect(l.sources.filter((s) => /\/attest\/|library\/attestations/.test(s))).toEqual([]);
      expect(l.builtins.filter((b) => /^node:(https|http|tls)$/.test(b))).toEqual([]);
    } finally {
      await fsp.rm(root, { recursive: true, force: true });
    }
  });
});
