// Rootless benchmark (issue 10): fixtures/apps/debian-multistage built by root and by an
// ordinary user (rootless: hoist re-runs itself in a user namespace with the user's subordinate
// ids; overlayfs mounted inside it), side by side in one run. Cold: an empty store, the base
// pulled from a loopback registry; cached: the same build again on the same store.
// BENCH_RUNS=n (default 3) runs per case; the median is shown. Needs root (it makes the user).
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sh, median, table, fmt } from './lib.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const hoistBin = path.join(repo, 'packages/cli/dist/main.js');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

/** The app's context with its FROM lines pointing at the registry's copy of debian:bookworm. */
async function context(work, debianRef) {
  const ctx = path.join(work, 'debian');
  await fsp.cp(path.join(repo, 'fixtures/apps/debian-multistage'), ctx, { recursive: true });
  const df = path.join(ctx, 'Dockerfile');
  await fsp.writeFile(df, (await fsp.readFile(df, 'utf8')).replace(/^(\s*FROM\s+)debian:bookworm(?=\s|$)/gim, `$1${debianRef}`));
  await sh('chmod', ['-R', 'a+rX', work]);
  return ctx;
}

async function timed(fn) {
  const t0 = process.hrtime.bigint();
  const r = await fn();
  if (r.code !== 0) throw new Error(`build failed (exit ${r.code}): ${r.stderr}`);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

export async function main() {
  if (process.getuid?.() !== 0) {
    console.log('\n(rootless: run the benchmark as root; it creates a temporary user)');
    return;
  }
  const { startRegistry, debianTarball, createTestUser, run } = await import(path.join(repo, 'packages/testkit/dist/index.js'));
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'hoist-bench-rootless-'));
  const reg = await startRegistry();
  const user = await createTestUser({ subids: true });
  try {
    const seed = path.join(work, 'seed');
    const debianRef = `${reg.host}/bench/debian:bookworm`;
    await sh(process.execPath, [hoistBin, 'import', '--root', seed, await debianTarball(), 'debian:bookworm']);
    await sh(process.execPath, [hoistBin, 'push', '--root', seed, '--progress', 'quiet', 'debian:bookworm', debianRef]);
    const ctx = await context(work, debianRef);
    const results = { root: { cold: [], cached: [] }, rootless: { cold: [], cached: [] } };
    const builds = {
      root: (store) => run(process.execPath, [hoistBin, 'build', '--root', store, '-q', '-t', 'bench-app:1', ctx]),
      rootless: (store) => user.hoist(['build', '--root', store, '-q', '-t', 'bench-app:1', ctx]),
    };
    for (let i = 0; i < RUNS; i++) {
      for (const mode of ['root', 'rootless']) {
        const store = mode === 'root' ? path.join(work, `root-${i}`) : path.join(user.home, `store-${i}`);
        results[mode].cold.push(await timed(() => builds[mode](store)));
        results[mode].cached.push(await timed(() => builds[mode](store)));
        await fsp.rm(store, { recursive: true, force: true });
      }
    }
    const rows = ['cold', 'cached'].map((kind) => {
      const r = median(results.root[kind]);
      const u = median(results.rootless[kind]);
      return [`apps/debian-multistage ${kind}`, fmt(r), fmt(u), (u / r).toFixed(2)];
    });
    table(`rootless vs root (median of ${RUNS}, base from a loopback registry; aim <= 1.20 cold, <= 1.10 cached)`, ['case', 'root', 'rootless', 'rootless/root'], rows);
  } finally {
    await reg.stop();
    await user.remove();
    await fsp.rm(work, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
