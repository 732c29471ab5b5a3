/**
 * The `hoist` bin of the bundle (issue 16): it runs the bundled CLI (hoist.cjs, one CommonJS
 * file) through a V8 code cache, so that a start does not parse and compile the CLI again.
 *
 * Why our own: Node 20 has no compile cache (module.enableCompileCache came in Node 22) and
 * cannot cache ES modules at all; `vm.Script` with `cachedData` is the documented way for a
 * script. The bundle is therefore CommonJS, and this file is bundled on its own as
 * `bundle/hoist.js` with the bundle's content hash (BUNDLE_ID) built in.
 *
 * The cache is kept per command (`build`, `version`, …; the rootless child apart from its
 * parent), because V8 stores the functions compiled by the time the cache is made: a cache
 * made after a build holds the build's code. It is written once, at the end of the first run
 * of that command with this bundle and this Node (or when V8 rejected the old one), into
 * `$XDG_CACHE_HOME/hoist/code-cache` (else `~/.cache/hoist/code-cache`): a directory of
 * the user's own, mode 0700, as code that is loaded must not come from a place others can
 * write. Anything unusual (no home, read-only, another owner) means no cache, never an error.
 * `HOIST_CODE_CACHE=off` turns it off; `HOIST_DEBUG_CODE_CACHE=1` says on stderr what it did.
 */
import * as fs from 'node:fs';
import Module from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vm from 'node:vm';

declare const BUNDLE_ID: string;

interface CacheFile {
  dir: string;
  file: string;
}

function debug(msg: string): void {
  if (process.env.HOIST_DEBUG_CODE_CACHE === '1') process.stderr.write(`hoist: code cache: ${msg}\n`);
}

/** The command the cache is for: the first argument that is a plain word, else `main`. */
function commandName(argv: string[]): string {
  const word = argv.slice(2).find((a) => !a.startsWith('-'));
  const name = word !== undefined && /^[a-z][a-z-]{0,31}$/.test(word) ? word : 'main';
  return process.env.HOIST_USERNS_CHILD === '1' ? `${name}.userns` : name;
}

function cacheFile(): CacheFile | undefined {
  if (process.env.HOIST_CODE_CACHE === 'off') return undefined;
  const base = process.env.XDG_CACHE_HOME || (os.homedir() ? path.join(os.homedir(), '.cache') : '');
  if (!path.isAbsolute(base)) return undefined;
  const dir = path.join(base, 'hoist', 'code-cache');
  // V8 rejects a cache made under other V8 flags: Node options get caches of their own, or every
  // run with them would reject and rewrite the one of the runs without
  const options = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join('\0');
  const key = `${BUNDLE_ID}-${process.version}-${process.arch}${options === '' ? '' : `-o${fnv1a(options)}`}`;
  return { dir, file: path.join(dir, `${commandName(process.argv)}-${key}.bin`) };
}

/** A short hash of a string (FNV-1a, 32 bits): a name, not a check; node:crypto costs 2.5 ms to load. */
function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

/** Our own and not writable by others: the only places code is loaded from or written to. */
function ours(st: fs.Stats): boolean {
  return st.uid === (process.geteuid?.() ?? st.uid) && (st.mode & 0o022) === 0;
}

function readCache(c: CacheFile): Buffer | undefined {
  let fd: number | undefined;
  try {
    if (!ours(fs.statSync(c.dir))) return undefined;
    fd = fs.openSync(c.file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    return ours(fs.fstatSync(fd)) ? fs.readFileSync(fd) : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Removes the temporaries of runs killed while writing (once a minute old: others may be
 * writing theirs now) and the caches of other bundles or Node versions once a day old (not at
 * once: two checkouts used in turn would otherwise rewrite theirs on every run).
 */
function prune(c: CacheFile): void {
  const now = Date.now();
  for (const n of fs.readdirSync(c.dir)) {
    const p = path.join(c.dir, n);
    const age = (): number => now - fs.statSync(p).mtimeMs;
    const stale = n.endsWith('.tmp') ? age() > 60_000 : n.endsWith('.bin') && p !== c.file && age() > DAY_MS;
    if (stale) fs.rmSync(p, { force: true });
  }
}

/** Written at exit (synchronously, then renamed into place). */
function writeCache(c: CacheFile, script: vm.Script): void {
  try {
    fs.mkdirSync(c.dir, { recursive: true, mode: 0o700 });
    if (!ours(fs.statSync(c.dir))) return;
    prune(c);
    const tmp = `${c.file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, script.createCachedData(), { mode: 0o600 });
    fs.renameSync(tmp, c.file);
    debug(`wrote ${c.file}`);
  } catch (e) {
    debug(`not written: ${(e as Error).message}`);
  }
}

function launch(): void {
  const file = path.join(__dirname, 'hoist.cjs');
  // ASCII only (scripts/bundle.mjs makes it so): latin1 is the same text, read faster
  const source = fs.readFileSync(file, 'latin1');
  const c = cacheFile();
  const cachedData = c && readCache(c);
  const script = new vm.Script(Module.wrap(source), { filename: file, cachedData });
  if (c && (!cachedData || script.cachedDataRejected)) {
    debug(cachedData ? `rejected ${c.file}` : `none at ${c.file}`);
    process.once('exit', () => writeCache(c, script));
  } else if (c) {
    debug(`used ${c.file}`);
  }
  const mod = { exports: {} };
  const run = script.runInThisContext() as (...args: unknown[]) => void;
  run(mod.exports, Module.createRequire(file), mod, file, __dirname);
}

launch();
