// Exported cache mounts (issue 13): fixtures/apps/node-npm-cache (`npm ci` against the npm
// registry, npm's cache in `RUN --mount=type=cache,target=/root/.npm`). Runner A builds once and
// exports its cache twice: with `cache-mounts=true` and without. Runner B (an empty store each
// run) adds one dependency and rebuilds from either export: rebuild time, requests npm sent to
// the npm registry (its log's cache misses) and cache-mount bytes fetched from the build-cache
// registry. The node base image is Debian plus the host's Node. Needs the npm registry.
// BENCH_RUNS=n (default 3) runs per case; the median is shown.
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sh, median, table, fmt } from './lib.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const hoistBin = path.join(repo, 'packages/cli/dist/main.js');
const fixture = path.join(repo, 'fixtures/apps/node-npm-cache');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

const hoist = (args) => sh(process.execPath, [hoistBin, ...args]);

async function nodeBase(work, debianRef, ref) {
  const ctx = path.join(work, 'node-base');
  await fsp.mkdir(ctx, { recursive: true });
  await fsp.copyFile(process.execPath, path.join(ctx, 'node'));
  await fsp.cp('/usr/lib/node_modules/npm', path.join(ctx, 'npm'), { recursive: true, verbatimSymlinks: true });
  await fsp.copyFile('/etc/ssl/certs/ca-certificates.crt', path.join(ctx, 'ca.crt'));
  const df = [`FROM ${debianRef}`, 'COPY node /usr/local/bin/node', 'COPY npm /usr/local/lib/node_modules/npm', 'COPY ca.crt /etc/ssl/certs/ca-certificates.crt', 'RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm', 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt', ''];
  await fsp.writeFile(path.join(ctx, 'Dockerfile'), df.join('\n'));
  await hoist(['build', '--root', path.join(work, 'seed'), '-q', '-t', ref, '--push', ctx]);
}

async function contexts(work) {
  const v1 = path.join(work, 'app-v1');
  await fsp.cp(fixture, v1, { recursive: true });
  await fsp.rm(path.join(v1, 'v2'), { recursive: true });
  const v2 = path.join(work, 'app-v2');
  await fsp.cp(v1, v2, { recursive: true });
  for (const f of ['package.json', 'package-lock.json']) await fsp.copyFile(path.join(fixture, 'v2', f), path.join(v2, f));
  return { v1, v2 };
}

function measure(r) {
  const misses = Number(/npm-cache-misses=(\d+)/.exec(r.err)?.[1] ?? NaN);
  const fetched = Number(/seeded from the imported cache \(.*, ([\d.]+) MiB fetched\)/.exec(r.err)?.[1] ?? 0);
  return { ms: r.ms, misses, fetched };
}

export async function main() {
  const { startRegistry, debianTarball } = await import(path.join(repo, 'packages/testkit/dist/index.js'));
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'hoist-bench-cache-mounts-'));
  const reg = await startRegistry();
  try {
    const seed = path.join(work, 'seed');
    const debianRef = `${reg.host}/bench/debian:bookworm`;
    await hoist(['import', '--root', seed, await debianTarball(), 'debian:bookworm']);
    await hoist(['push', '--root', seed, '--progress', 'quiet', 'debian:bookworm', debianRef]);
    const base = `${reg.host}/bench/node:20`;
    await nodeBase(work, debianRef, base);
    const { v1, v2 } = await contexts(work);
    const refs = { with: `${reg.host}/bench/npm-cache:mounts`, without: `${reg.host}/bench/npm-cache:plain` };
    const arg = ['--build-arg', `NODE_BASE=${base}`, '--progress', 'plain'];
    const a = await hoist(['build', '--root', path.join(work, 'runner-a'), ...arg, '--cache-to', `type=registry,ref=${refs.with},cache-mounts=true`, '--cache-to', `type=registry,ref=${refs.without}`, '-t', 'app:1', v1]);
    const cacheLine = /cache mount \/root\/.npm: (\d+) files, ([\d.]+) MiB/.exec(a.err);
    const results = { with: [], without: [] };
    for (let i = 0; i < RUNS; i++) {
      for (const mode of ['without', 'with']) {
        const store = path.join(work, `runner-b-${mode}-${i}`);
        results[mode].push(measure(await hoist(['build', '--root', store, ...arg, '--cache-from', `type=registry,ref=${refs[mode]}`, '-t', 'app:2', v2])));
        await fsp.rm(store, { recursive: true, force: true });
      }
    }
    const row = (mode) => {
      const rs = results[mode];
      return [mode === 'with' ? 'with exported cache mounts' : 'records only', fmt(median(rs.map((r) => r.ms))), String(median(rs.map((r) => r.misses))), `${median(rs.map((r) => r.fetched)).toFixed(1)} MiB`];
    };
    table(
      `cache mounts: runner B adds one npm dependency (npm cache ${cacheLine?.[1]} files, ${cacheLine?.[2]} MiB; median of ${RUNS})`,
      ['runner B', 'rebuild', 'npm registry requests', 'cache-mount bytes fetched'],
      [row('without'), row('with')],
    );
  } finally {
    await reg.stop();
    await fsp.rm(work, { recursive: true, force: true });
  }
}
