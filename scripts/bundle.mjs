#!/usr/bin/env node
// Bundles the CLI (issue 16) into packages/cli/bundle/:
//   hoist.cjs        the whole CLI in one CommonJS file. esbuild follows the compiled packages
//                    (dist/) and wraps every module reached only through `await import()` in a
//                    lazy initialiser, so a command runs only the top-level code of what it uses.
//                    CommonJS rather than ES modules because Node 20 can cache the compiled
//                    code of a script (vm.Script cachedData) but not of an ES module.
//   hoist.js         the bin: packages/cli/src/launcher.ts, which runs hoist.cjs through a V8
//                    code cache kept per command; it carries hoist.cjs's sha256 (BUNDLE_ID),
//                    so a rebuilt bundle never meets the cache of another.
//   reclaim-main.js  the watchdog's script, beside hoist.cjs where the bundled watchdog looks.
//   package.json     {"type": "commonjs"}: the .js files here are CommonJS.
//   meta.json        esbuild's metafile (which sources each output holds); a test reads it.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(repo, 'packages/cli/bundle');
const common = { bundle: true, format: 'cjs', platform: 'node', target: 'node20', logLevel: 'warning' };

// Node modules that cost milliseconds to load (child_process brings net and stream with it)
// and that most runs of most commands never call: commander requires child_process for
// executable subcommands we have none of, and a builder module importing `spawn` is loaded by
// a fully cached build that spawns nothing. Each becomes a module with the same export names
// whose getters load the real one on first use (esbuild reads an import's names at call time).
const LAZY_BUILTINS = ['child_process', 'zlib', 'crypto', 'http', 'https', 'tls', 'net', 'dns', 'readline'];
const require = createRequire(import.meta.url);
const lazyBuiltins = {
  name: 'lazy-builtins',
  setup(b) {
    const filter = new RegExp(`^(node:)?(${LAZY_BUILTINS.join('|')})$`);
    b.onResolve({ filter }, (a) => {
      const name = a.path.replace(/^node:/, '');
      return a.namespace === 'lazy-builtin' ? { path: `node:${name}`, external: true } : { path: name, namespace: 'lazy-builtin' };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (a) => ({
      loader: 'js',
      contents: [
        'let real;',
        `const load = () => (real ??= require('node:${a.path}'));`,
        `for (const k of ${JSON.stringify(Object.keys(require(a.path)))}) {`,
        '  Object.defineProperty(module.exports, k, { enumerable: true, get: () => load()[k] });',
        '}',
      ].join('\n'),
    }));
  },
};

// The CLI's sources are ES modules: import.meta.url becomes the URL of the output file.
// (They have no top-level await, which CommonJS cannot hold: esbuild refuses it.)
const esmToCjs = {
  define: { 'import.meta.url': '__hoistImportMetaUrl' },
  banner: { js: "const __hoistImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
  plugins: [lazyBuiltins],
};

/**
 * esbuild turns each `import * as path from 'node:path'` (77 of them) into its own copy of the
 * module's properties (__toESM), made when the importing module starts: milliseconds at every
 * start. One view per module is what ES modules give (a module has one namespace object), so
 * the views are made once per module and shared.
 */
function memoizeToEsm(text) {
  const helper = 'var __toESM = (mod, isNodeMode, target';
  if (!text.includes(helper)) throw new Error('bundle: esbuild\'s __toESM helper was not found; update memoizeToEsm');
  const memo = [
    'var __toESMViews = [new WeakMap(), new WeakMap()];',
    'var __toESM = (mod, isNodeMode) => {',
    '  if (mod === null || (typeof mod !== "object" && typeof mod !== "function")) return __toESMOnce(mod, isNodeMode);',
    '  const views = __toESMViews[isNodeMode ? 1 : 0];',
    '  let view = views.get(mod);',
    '  if (view === undefined) views.set(mod, (view = __toESMOnce(mod, isNodeMode)));',
    '  return view;',
    '};',
  ].join('\n');
  return text.replace(helper, `${memo}\nvar __toESMOnce = (mod, isNodeMode, target`);
}

/**
 * The few non-ASCII characters esbuild leaves (in comments and one regular expression) as \uXXXX
 * escapes, which mean the same there: an ASCII file is read as latin1, V8 keeps it one byte per
 * character, and reading it takes half the time of UTF-8 decoding a file with a non-ASCII
 * character (which makes V8 hold all 1 MB as two bytes per character).
 */
function asciiOnly(text) {
  return text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

await rm(out, { recursive: true, force: true });
const result = await build({
  ...common,
  ...esmToCjs,
  entryPoints: {
    hoist: join(repo, 'packages/cli/dist/main.js'),
    'reclaim-main': join(repo, 'packages/builder/dist/sandbox/reclaim-main.js'),
  },
  outdir: out,
  outExtension: { '.js': '.cjs' },
  metafile: true,
});
// the entry's `#!` line would be a syntax error inside the launcher's function wrapper
const cli = join(out, 'hoist.cjs');
await writeFile(cli, asciiOnly(memoizeToEsm((await readFile(cli, 'utf8')).replace(/^#!/, '//'))));
await rm(join(out, 'reclaim-main.js'), { force: true });
await writeFile(join(out, 'reclaim-main.js'), await readFile(join(out, 'reclaim-main.cjs')));
await rm(join(out, 'reclaim-main.cjs'));
const bundleId = createHash('sha256').update(await readFile(cli)).digest('hex').slice(0, 16);
await build({
  ...common,
  entryPoints: { hoist: join(repo, 'packages/cli/dist/launcher.js') },
  outdir: out,
  define: { BUNDLE_ID: JSON.stringify(bundleId) },
  banner: { js: '#!/usr/bin/env node' },
});
await writeFile(join(out, 'package.json'), '{ "type": "commonjs" }\n');
await writeFile(join(out, 'meta.json'), JSON.stringify(result.metafile));
await chmod(join(out, 'hoist.js'), 0o755);
