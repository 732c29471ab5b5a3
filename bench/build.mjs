// Build benchmark (issues 2, 6 and 16), side by side in one run with BuildKit (Debian's
// docker.io, a private dockerd started by bench/buildkit.mjs) and `buildah bud`:
//   fixtures/hello (busybox), fixtures/apps/debian-multistage (Debian, three stages, two of them
//   independent) and a generated context of 20,000 small files, each
//   cold (empty stores, the base pulled from a loopback registry), fully cached (the same build
//   again on the same store) and one-file-changed (one source file edited, then built again).
// The tools take turns within each run (interleaved); the best and the median of BENCH_RUNS
// (default 5) runs are shown with the machine's load average.
// BENCH_TOOLS=hoist,buildkit,buildah picks tools;
// BENCH_CASES=hello,debian,files20k picks cases. `bash bench/setup.sh` installs docker.io.
// hoist runs through its bin (packages/cli/bin/hoist), as users start it. HOIST_BIN=FILE runs
// another hoist build (its bin, or a .js entry run with node: bundle/hoist.js, dist/main.js);
// HOIST_BIN_BASELINE=FILE adds the tool `hoist-baseline` (another checkout, e.g. before a
// refactor), interleaved like the others.
import { existsSync, promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sh, median, table, fmt } from './lib.mjs';
import { buildkitAvailable, startBuildkit } from './buildkit.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const hoistBin = process.env.HOIST_BIN ? path.resolve(process.env.HOIST_BIN) : path.join(repo, 'packages/cli/bin/hoist');
const baselineBin = process.env.HOIST_BIN_BASELINE ? path.resolve(process.env.HOIST_BIN_BASELINE) : undefined;
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

/** Run hoist `bin` (a .js entry through node, else the file itself) with `args`. */
function hoistRun(bin, args) {
  return bin.endsWith('.js') ? sh(process.execPath, [bin, ...args]) : sh(bin, args);
}
const pick = (name, all) => (process.env[name] ?? '').split(',').filter(Boolean).length ? process.env[name].split(',') : all;
const TOOLS = pick('BENCH_TOOLS', ['hoist', ...(baselineBin ? ['hoist-baseline'] : []), 'buildkit', 'buildah']);
const CASES = pick('BENCH_CASES', ['hello', 'debian', 'files20k']);
// dockerd's private root (BENCH_DOCKERD_TMP, default os.tmpdir())
const DOCKERD_TMP = process.env.BENCH_DOCKERD_TMP ?? os.tmpdir();
// shared with the snapshotter and builder tests: made once by debootstrap, then imported once
const CACHE = process.env.HOIST_TEST_CACHE ?? path.join(os.homedir(), '.cache', 'hoist-test');
const DEB_LAYOUT = path.join(CACHE, 'debian-bookworm-hoist.oci');

async function prepareContext(src, refs, work, name) {
  const ctx = path.join(work, name);
  await fsp.cp(src, ctx, { recursive: true });
  const df = path.join(ctx, 'Dockerfile');
  let text = await fsp.readFile(df, 'utf8');
  for (const [image, ref] of Object.entries(refs)) {
    text = text.replace(new RegExp(`^(\\s*FROM\\s+)${image}(:[\\w.-]+)?(?=\\s|$)`, 'gim'), `$1${ref}`);
  }
  await fsp.writeFile(df, text);
  return ctx;
}

/** debian:bookworm as an OCI layout (from the cached debootstrap tarball), pushed to the registry. */
async function pushDebian(seed, ref) {
  if (!existsSync(path.join(DEB_LAYOUT, 'index.json'))) {
    const { debianTarball } = await import(path.join(repo, 'packages/testkit/dist/index.js'));
    await hoistRun(hoistBin, ['import', '--root', seed, await debianTarball(), 'debian:bookworm']);
    const tmp = `${DEB_LAYOUT}.tmp-${process.pid}`;
    await sh('skopeo', ['copy', '-q', `oci:${seed}/oci:docker.io/library/debian:bookworm`, `oci:${tmp}:bookworm`]);
    await fsp.rename(tmp, DEB_LAYOUT);
  }
  await sh('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${DEB_LAYOUT}:bookworm`, `docker://${ref}`]);
}


function hoistBuild(store, ctx, tag, bin = hoistBin) {
  return hoistRun(bin, ['build', '--root', store, '--progress', 'quiet', '-t', tag, ctx]);
}

function buildahArgs(store) {
  return ['--root', path.join(store, 'root'), '--runroot', path.join(store, 'run'), '--storage-driver', 'overlay'];
}

function buildahBuild(store, ctx, tag) {
  return sh('buildah', [...buildahArgs(store), 'bud', '--isolation', 'chroot', '--tls-verify=false', '--layers', '-q', '-t', tag, ctx]);
}

async function cleanStore(tool, store) {
  if (tool === 'buildah') await sh('buildah', [...buildahArgs(store), 'rmi', '-a', '-f'], { allowFail: true });
  await sh('bash', ['-c', `umount -R ${store}/root/overlay 2>/dev/null; rm -rf ${store}`], { allowFail: true });
}

/** A tool's session on an empty store: build(ctx) and close() (which empties it again). */
function storeTool(tool, build, work) {
  let n = 0;
  return {
    async open() {
      const store = path.join(work, `${tool}-${n++}`);
      await fsp.mkdir(store, { recursive: true });
      return { build: (ctx) => build(store, ctx, 'bench-app:1'), close: () => cleanStore(tool, store) };
    },
  };
}

/**
 * BuildKit on an empty store: a fresh private dockerd per run (started and stopped outside the
 * timings). Pruning one daemon between runs is not enough: after `docker system prune` BuildKit
 * 20.10 sometimes fails a COPY --from with "failed to walk ... no such file" (moby/buildkit#2103).
 */
function buildkitTool(registry) {
  return {
    async open() {
      const bk = await startBuildkit(await fsp.mkdtemp(path.join(DOCKERD_TMP, 'hoist-bench-dockerd-')), registry);
      return { build: (ctx) => bk.build(ctx, 'bench-app:1'), close: () => bk.stop() };
    },
  };
}

/** 20,000 small files in 100 directories, copied and listed by one RUN. */
async function files20k(work, refs) {
  const ctx = path.join(work, 'files20k');
  for (let d = 0; d < 100; d++) {
    const dir = path.join(ctx, 'files', `d${String(d).padStart(2, '0')}`);
    await fsp.mkdir(dir, { recursive: true });
    await Promise.all(Array.from({ length: 200 }, (_, f) => fsp.writeFile(path.join(dir, `f${String(f).padStart(3, '0')}.txt`), `file ${d}/${f}\n`)));
  }
  await fsp.writeFile(path.join(ctx, 'Dockerfile'), `FROM ${refs.busybox}\nCOPY files/ /data/\nRUN find /data -type f | wc -l > /count\n`);
  return ctx;
}

/** One run of one tool on one case: cold, fully cached, one file changed (then the file is restored). */
async function measureOnce(session, c, tag) {
  const file = path.join(c.ctx, c.changes);
  const original = await fsp.readFile(file);
  try {
    const cold = (await session.build(c.ctx)).ms;
    const cached = (await session.build(c.ctx)).ms;
    await fsp.writeFile(file, Buffer.concat([original, Buffer.from(`changed ${tag}\n`)]));
    const changed = (await session.build(c.ctx)).ms;
    return { cold, cached, changed };
  } finally {
    await fsp.writeFile(file, original);
    await session.close();
  }
}

async function prepareCases(work, refs) {
  const all = {
    hello: { name: 'fixtures/hello', changes: 'greeting.txt', ctx: () => prepareContext(path.join(repo, 'fixtures/hello'), refs, work, 'hello') },
    debian: { name: 'apps/debian-multistage', changes: 'src/words.txt', ctx: () => prepareContext(path.join(repo, 'fixtures/apps/debian-multistage'), refs, work, 'debian') },
    files20k: { name: '20,000 small files', changes: 'files/d42/f042.txt', ctx: () => files20k(work, refs) },
  };
  const out = [];
  for (const k of CASES) out.push({ ...all[k], ctx: await all[k].ctx() });
  return out;
}

const KINDS = ['cold', 'cached', 'changed'];
const load = () => os.loadavg().map((n) => n.toFixed(2)).join(' ');

function report(cases, best, what = `best of ${RUNS}`) {
  const rows = [];
  const has = (t) => TOOLS.includes(t);
  for (const c of cases) {
    for (const k of KINDS) {
      const v = (t) => best[c.name][t][k];
      const ratio = (t) => (has('hoist') && has(t) ? (v('hoist') / v(t)).toFixed(2) : '-');
      const extra = has('hoist-baseline') ? [ratio('hoist-baseline')] : [];
      rows.push([`${c.name} ${k}`, ...TOOLS.map((t) => fmt(v(t))), ratio('buildkit'), ratio('buildah'), ...extra]);
    }
  }
  const extraHead = has('hoist-baseline') ? ['hoist/baseline'] : [];
  table(`build: hoist vs BuildKit (docker.io 20.10) and buildah bud (${what}, interleaved, base from a loopback registry; target hoist/BuildKit <= 1.00)`, ['case', ...TOOLS, 'hoist/BuildKit', 'hoist/buildah', ...extraHead], rows);
}

/** One figure per case, tool and kind from all runs: the best (min) or the median (the best alone hides how noisy a row is). */
function summarize(cases, runs, of) {
  return Object.fromEntries(cases.map((c) => [c.name, Object.fromEntries(TOOLS.map((t) => [t, Object.fromEntries(KINDS.map((k) => [k, of(runs[c.name][t][k])]))]))]));
}

/** Failed runs, reported with the table (a failed run is redone from an empty store). */
const failures = [];

async function measureRetrying(tool, c, tag) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await measureOnce(await tool.open(), c, tag);
    } catch (e) {
      const line = String(e.message).split('\n').find((l) => /error|failed/i.test(l) && !l.includes(' exited ')) ?? String(e.message).split('\n')[0];
      failures.push(`${tag} on ${c.name} (attempt ${attempt}): ${line.trim()}`);
      if (attempt >= 3) throw e;
    }
  }
}

async function runCases(cases, tools) {
  const runs = {};
  for (const c of cases) {
    runs[c.name] = Object.fromEntries(TOOLS.map((t) => [t, { cold: [], cached: [], changed: [] }]));
    for (let i = 0; i < RUNS; i++) {
      // interleaved, and each tool goes first in turn
      const order = TOOLS.map((_, j) => TOOLS[(i + j) % TOOLS.length]);
      for (const t of order) {
        const r = await measureRetrying(tools[t], c, `${i} ${t}`);
        for (const k of KINDS) runs[c.name][t][k].push(r[k]);
      }
    }
  }
  return runs;
}

export async function main() {
  const { startRegistry } = await import(path.join(repo, 'packages/testkit/dist/index.js'));
  if (TOOLS.includes('buildkit') && !buildkitAvailable()) await sh('bash', [path.join(repo, 'bench/setup.sh')]);
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'hoist-bench-build-'));
  const reg = await startRegistry();
  try {
    // base images: busybox made offline and debian from debootstrap, served by the local registry
    const seed = path.join(work, 'seed');
    await sh('bash', [path.join(repo, 'fixtures/base/busybox.sh'), '--root', seed]);
    const refs = { busybox: `${reg.host}/bench/busybox:latest`, debian: `${reg.host}/bench/debian:bookworm` };
    await hoistRun(hoistBin, ['push', '--root', seed, '--progress', 'quiet', 'busybox:latest', refs.busybox]);
    if (CASES.includes('debian')) await pushDebian(seed, refs.debian);
    const cases = await prepareCases(work, refs);
    const baseline = (store, ctx, tag) => hoistBuild(store, ctx, tag, baselineBin);
    const tools = { hoist: storeTool('hoist', hoistBuild, work), 'hoist-baseline': storeTool('hoist-baseline', baseline, work), buildah: storeTool('buildah', buildahBuild, work), buildkit: buildkitTool(reg.host) };
    const before = load();
    const runs = await runCases(cases, tools);
    report(cases, summarize(cases, runs, (xs) => Math.min(...xs)));
    report(cases, summarize(cases, runs, median), `median of ${RUNS}`);
    if (baselineBin) console.log(`hoist: ${hoistBin}\nhoist-baseline: ${baselineBin}`);
    console.log(`\nload average (1, 5, 15 min): ${before} before, ${load()} after; ${os.cpus().length} CPUs`);
    if (failures.length) console.log(`\nruns that failed and were redone on an empty store:\n${failures.map((f) => `  ${f}`).join('\n')}`);
  } finally {
    await reg.stop();
    await fsp.rm(work, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
