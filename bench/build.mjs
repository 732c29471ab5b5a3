// Build benchmark (issues 2 and 6), side by side with `buildah bud` in one run:
//   fixtures/hello (busybox) and fixtures/apps/debian-multistage (Debian, three stages, two of
//   them independent), each cold (empty stores, the base pulled from a loopback registry) and
//   fully cached (the same build again on the same store).
// BENCH_RUNS=n (default 3) runs per case; the median is shown.
import { existsSync, promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sh, median, table, fmt } from './lib.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const hoistBin = path.join(repo, 'packages/cli/bundle/hoist.js');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
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
    await sh(process.execPath, [hoistBin, 'import', '--root', seed, await debianTarball(), 'debian:bookworm']);
    const tmp = `${DEB_LAYOUT}.tmp-${process.pid}`;
    await sh('skopeo', ['copy', '-q', `oci:${seed}/oci:docker.io/library/debian:bookworm`, `oci:${tmp}:bookworm`]);
    await fsp.rename(tmp, DEB_LAYOUT);
  }
  await sh('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${DEB_LAYOUT}:bookworm`, `docker://${ref}`]);
}

function hoistBuild(store, ctx, tag) {
  return sh(process.execPath, [hoistBin, 'build', '--root', store, '--progress', 'quiet', '-t', tag, ctx]);
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

export async function main() {
  const { startRegistry } = await import(path.join(repo, 'packages/testkit/dist/index.js'));
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'hoist-bench-build-'));
  const reg = await startRegistry();
  try {
    // base images: busybox made offline and debian from debootstrap, served by the local registry
    const seed = path.join(work, 'seed');
    await sh('bash', [path.join(repo, 'fixtures/base/busybox.sh'), '--root', seed]);
    const refs = { busybox: `${reg.host}/bench/busybox:latest`, debian: `${reg.host}/bench/debian:bookworm` };
    await sh(process.execPath, [hoistBin, 'push', '--root', seed, '--progress', 'quiet', 'busybox:latest', refs.busybox]);
    await pushDebian(seed, refs.debian);
    const cases = [
      ['fixtures/hello', await prepareContext(path.join(repo, 'fixtures/hello'), refs, work, 'hello')],
      ['apps/debian-multistage', await prepareContext(path.join(repo, 'fixtures/apps/debian-multistage'), refs, work, 'debian')],
    ];
    const rows = [];
    let worst = 0;
    for (const [name, ctx] of cases) {
      const results = { hoist: { cold: [], cached: [] }, buildah: { cold: [], cached: [] } };
      for (let i = 0; i < RUNS; i++) {
        for (const [tool, fn] of [['hoist', hoistBuild], ['buildah', buildahBuild]]) {
          const store = path.join(work, `${tool}-${i}`);
          await fsp.mkdir(store, { recursive: true });
          results[tool].cold.push((await fn(store, ctx, 'bench-app:1')).ms);
          results[tool].cached.push((await fn(store, ctx, 'bench-app:1')).ms);
          await cleanStore(tool, store);
        }
      }
      for (const kind of ['cold', 'cached']) {
        const h = median(results.hoist[kind]);
        const b = median(results.buildah[kind]);
        worst = Math.max(worst, h / b);
        rows.push([`${name} ${kind}`, fmt(h), fmt(b), (h / b).toFixed(2)]);
      }
    }
    table(`build: hoist vs buildah bud (median of ${RUNS}, base from a loopback registry, target <= 1.00)`, ['case', 'hoist', 'buildah', 'hoist/buildah'], rows);
    console.log(`\nworst ratio ${worst.toFixed(2)} ${worst <= 1 ? '(meets the target)' : '(MISSES the target of 1.00)'}`);
  } finally {
    await reg.stop();
    await fsp.rm(work, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
