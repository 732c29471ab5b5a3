/**
 * Start-up (issue 16): `hoist version` must not load the registry client, the tar codec,
 * compression or the progress renderer; a fully cached build from the local store loads neither
 * the registry client, the cache import/export package nor the progress renderer. Counted, not timed: the real CLI runs under an ESM
 * loader hook that reports every module it loads; bundle chunks are mapped back to their
 * sources through esbuild's metafile (packages/cli/bundle/meta.json).
 */
import { existsSync, promises as fsp, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { HOIST_BIN, REPO_ROOT, hoist, run, storeWithBusybox, tempDir } from '@hoist/testkit';

interface Loaded {
  builtins: string[];
  sources: string[];
  stdout: string;
}

const HOOK = "export async function load(url, ctx, next) { process.stderr.write('LOADED ' + url + '\\n'); return next(url, ctx); }\n";

/** The sources each bundle file holds (esbuild metafile), by absolute path of the output. */
function bundleInputs(): Map<string, string[]> {
  const metaFile = path.join(path.dirname(HOIST_BIN), 'meta.json');
  const out = new Map<string, string[]>();
  if (!existsSync(metaFile)) return out;
  const meta = JSON.parse(readFileSync(metaFile, 'utf8')) as { outputs: Record<string, { inputs: Record<string, unknown> }> };
  // metafile paths are relative to the working directory esbuild ran in (the repository)
  const repo = path.resolve(path.dirname(HOIST_BIN), '..', '..', '..');
  for (const [file, o] of Object.entries(meta.outputs)) out.set(path.resolve(repo, file), Object.keys(o.inputs));
  return out;
}

async function loadedBy(args: string[], work: string): Promise<Loaded> {
  // quiet, plain: what CI runs (no terminal), so no renderer is wanted
  const hook = path.join(work, 'hook.mjs');
  await fsp.writeFile(hook, HOOK);
  const r = await run(process.execPath, ['--no-warnings', '--experimental-loader', hook, HOIST_BIN, ...args]);
  expect(r.code).toBe(0);
  const urls = r.stderr.split('\n').filter((l) => l.startsWith('LOADED ')).map((l) => l.slice(7));
  const chunks = bundleInputs();
  const files = urls.filter((u) => u.startsWith('file://')).map((u) => new URL(u).pathname);
  return {
    builtins: urls.filter((u) => u.startsWith('node:')),
    sources: files.flatMap((f) => chunks.get(f) ?? [f]),
    stdout: r.stdout,
  };
}

describe('start-up: what `hoist version` loads', () => {
  let work: string;
  beforeAll(async () => {
    work = await tempDir('startup');
  });
  afterAll(async () => {
    await fsp.rm(work, { recursive: true, force: true });
  });

  it('loads neither the registry client, tar, compression nor the progress renderer', async () => {
    const l = await loadedBy(['version'], work);
    expect(l.stdout).toMatch(/^hoist \d+\.\d+\.\d+\n$/);
    // the hook saw the CLI itself: the lists below are real
    expect(l.sources.some((s) => /packages\/cli\/(dist|src)\/main\.(js|ts)$/.test(s))).toBe(true);
    const heavy = l.sources.filter((s) => /registry-client\/|snapshotter\/(dist|src)\/tar\/|tty-progress|\/builder\/|\/exporter\/|\/cache\/(dist|src)\//.test(s));
    expect(heavy).toEqual([]);
    expect(l.builtins.filter((b) => /^node:(zlib|https|http|tls|crypto|child_process)$/.test(b))).toEqual([]);
  });

  it('loads of our own code only main, its error classes and the pipe guard', async () => {
    const l = await loadedBy(['version'], work);
    const ours = l.sources.filter((s) => /packages\//.test(s));
    // main, its error classes and the broken-pipe guard: the commands come only when they run
    expect(ours.map((s) => path.basename(s)).sort()).toEqual(['errors.js', 'main.js', 'pipes.js']);
  });

  it('a fully cached build loads neither the registry client, the cache package nor the progress renderer', async () => {
    const root = await storeWithBusybox();
    try {
      const args = ['build', '--root', root, '--progress', 'plain', '-t', 'hello:1', path.join(REPO_ROOT, 'fixtures', 'hello')];
      expect((await hoist(args)).code).toBe(0);
      const l = await loadedBy(args, work);
      // it did build (from the cache) and the hook saw the builder
      expect(l.sources.some((s) => /packages\/builder\/(dist|src)\/build\.js$/.test(s))).toBe(true);
      expect(l.sources.filter((s) => /registry-client\/|\/cache\/(dist|src)\/|tty-progress/.test(s))).toEqual([]);
      expect(l.builtins.filter((b) => /^node:(https|http|tls)$/.test(b))).toEqual([]);
    } finally {
      await fsp.rm(root, { recursive: true, force: true });
    }
  });
});
