// Multi-platform benchmark (issue 11): fixtures/apps/debian-multistage (perl, sha256sum, tar,
// dpkg-query and useradd in its RUN steps) from a Debian amd64+arm64 index on a loopback
// registry, built for linux/amd64 (native) and linux/arm64 (emulated) by hoist and by
// `buildah bud --isolation chroot`. hoist runs arm64 RUN steps under QEMU with no host setup
// (a binfmt_misc instance private to each step); buildah needs a host handler, so this
// benchmark registers Debian's qemu-aarch64 (its magic and mask, flag F) only while buildah
// builds for arm64, mounting binfmt_misc first if it is not mounted, and undoes both right
// after (also on Ctrl-C or a failure): the host is left as it was found.
// Cold: an empty store, the base pulled from the registry; cached: the same build again.
// BENCH_RUNS=n (default 3) runs, tools and platforms interleaved; the median is shown.
import { execFileSync } from 'node:child_process';
import { existsSync, promises as fsp, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sh, median, table, fmt } from './lib.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const hoistBin = path.join(repo, 'packages/cli/bundle/hoist.js');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const BINFMT = '/proc/sys/fs/binfmt_misc';
const QEMU = '/usr/bin/qemu-aarch64-static';
const load = () => readFileSync('/proc/loadavg', 'utf8').trim();

/**
 * A host binfmt_misc handler for aarch64, for buildah only: `enable()` mounts binfmt_misc (if
 * needed) and registers qemu-aarch64 (if absent); `disable()` undoes exactly what enable did.
 */
function hostBinfmt() {
  let mounted = false;
  let registered = false;
  const isMounted = () => readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === BINFMT);
  const registration = () => {
    // Debian's description: :name:M:offset:magic:mask:interpreter:flags (magic and mask \x-escaped)
    const f = readFileSync('/usr/lib/binfmt.d/qemu-aarch64.conf', 'utf8').split('\n').find((l) => l.startsWith(':'));
    const [, name, type, offset, magic, mask] = f.split(':');
    if (name !== 'qemu-aarch64' || type !== 'M') throw new Error(`unexpected binfmt description: ${f}`);
    return `:qemu-aarch64:M:${offset}:${magic}:${mask}:${QEMU}:F`;
  };
  const disable = () => {
    if (registered) writeFileSync(path.join(BINFMT, 'qemu-aarch64'), '-1');
    registered = false;
    if (mounted) execFileSync('umount', [BINFMT]);
    mounted = false;
  };
  return {
    enable() {
      if (!isMounted()) {
        execFileSync('mount', ['-t', 'binfmt_misc', 'binfmt_misc', BINFMT]);
        mounted = true;
      }
      if (!existsSync(path.join(BINFMT, 'qemu-aarch64'))) {
        writeFileSync(path.join(BINFMT, 'register'), registration());
        registered = true;
      }
    },
    disable,
    /** Whether the host has an aarch64 handler now (hoist's runs must see none). */
    present: () => isMounted() && existsSync(path.join(BINFMT, 'qemu-aarch64')),
  };
}

/**
 * Undo the host change on any way out: normal end, failure, Ctrl-C, kill. On a signal the
 * handler goes first (synchronously), then `cleanup` (registry, stores), then the exit.
 */
function trap(binfmt, cleanup, onStop) {
  const onSignal = (sig) => {
    binfmt.disable();
    onStop();
    cleanup().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.on('exit', binfmt.disable);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return () => {
    process.off('exit', binfmt.disable);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

async function context(work, debianRef) {
  const ctx = path.join(work, 'app');
  await fsp.cp(path.join(repo, 'fixtures/apps/debian-multistage'), ctx, { recursive: true });
  const df = path.join(ctx, 'Dockerfile');
  await fsp.writeFile(df, (await fsp.readFile(df, 'utf8')).replace(/^(\s*FROM\s+)debian:bookworm(?=\s|$)/gim, `$1${debianRef}`));
  return ctx;
}

/** The builds running now, stopped first when the benchmark is interrupted. */
const running = new Set();
const track = {
  onChild: (child) => {
    running.add(child);
    child.on('close', () => running.delete(child));
  },
};

async function stopRunning() {
  const closed = [...running].map((c) => new Promise((resolve) => c.once('close', resolve)));
  for (const c of running) c.kill('SIGTERM');
  await Promise.race([Promise.all(closed), new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
}

const buildahStore = (store) => ['--root', path.join(store, 'root'), '--runroot', path.join(store, 'run'), '--storage-driver', 'overlay'];

const tools = {
  hoist: {
    build: (store, ctx, platform) => sh(process.execPath, [hoistBin, 'build', '--root', store, '--progress', 'quiet', '--platform', platform, '-t', 'bench-mp:1', ctx], track),
    arch: async (store) => JSON.parse((await sh(process.execPath, [hoistBin, 'inspect', '--root', store, 'bench-mp:1'])).out).config.architecture,
    clean: (store) => sh('bash', ['-c', `umount -R ${store}/root/overlay 2>/dev/null; rm -rf ${store}`], { allowFail: true }),
  },
  buildah: {
    build: (store, ctx, platform) => sh('buildah', [...buildahStore(store), 'bud', '--isolation', 'chroot', '--tls-verify=false', '--layers', '-q', '--platform', platform, '-t', 'bench-mp:1', ctx], track),
    arch: async (store) => (await sh('buildah', [...buildahStore(store), 'inspect', '--type', 'image', '--format', '{{.OCIv1.Architecture}}', 'bench-mp:1'])).out.trim(),
    clean: async (store) => {
      await sh('buildah', [...buildahStore(store), 'rmi', '-a', '-f'], { allowFail: true });
      await sh('bash', ['-c', `umount -R ${store}/root/overlay 2>/dev/null; rm -rf ${store}`], { allowFail: true });
    },
  },
};

/** One cold and one cached build of one tool for one platform on an empty store. */
async function measure(o) {
  const { tool, platform, work, ctx, binfmt, tag } = o; // o.stopped(): the benchmark was interrupted
  const store = path.join(work, `${tool}-${tag}`);
  const foreignBuildah = tool === 'buildah' && platform === 'linux/arm64';
  if (foreignBuildah) binfmt.enable();
  try {
    if (tool === 'hoist' && binfmt.present()) throw new Error('a host aarch64 handler is registered: hoist would use it instead of its own');
    const cold = (await tools[tool].build(store, ctx, platform)).ms;
    // a wrong-architecture image would make the comparison meaningless
    const arch = await tools[tool].arch(store);
    if (arch !== platform.split('/')[1]) throw new Error(`${tool} built ${arch} for ${platform}`);
    const cached = (await tools[tool].build(store, ctx, platform)).ms;
    return { cold, cached };
  } finally {
    if (foreignBuildah) binfmt.disable();
    // once interrupted, the trap's cleanup removes everything (cleaning here too would race it)
    if (!o.stopped()) await tools[tool].clean(store);
  }
}

export async function main() {
  if (process.getuid?.() !== 0) {
    console.log('\n(multiplatform: run the benchmark as root; it mounts binfmt_misc for buildah)');
    return;
  }
  const { startRegistry, pushMultiPlatformDebian } = await import(path.join(repo, 'packages/testkit/dist/index.js'));
  const binfmt = hostBinfmt();
  if (binfmt.present()) console.log('\nnote: the host already has a qemu-aarch64 binfmt handler; hoist uses it too, so its arm64 runs are not the no-setup path');
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'hoist-bench-mp-'));
  const reg = await startRegistry();
  const cleanup = async () => {
    await stopRunning();
    await reg.stop();
    // a store whose build was interrupted may still have overlay mounts
    await sh('bash', ['-c', `grep -o ' ${work}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l`], { allowFail: true });
    await fsp.rm(work, { recursive: true, force: true });
  };
  let stopped = false;
  const untrap = trap(binfmt, cleanup, () => (stopped = true));
  try {
    const ctx = await context(work, await pushMultiPlatformDebian(reg.host));
    const cases = ['linux/amd64', 'linux/arm64'];
    const times = {};
    const before = load();
    for (let i = 0; i < RUNS; i++) {
      for (const platform of cases) {
        const order = i % 2 ? ['buildah', 'hoist'] : ['hoist', 'buildah'];
        for (const tool of order) {
          const r = await measure({ tool, platform, work, ctx, binfmt, stopped: () => stopped, tag: `${i}-${platform.replace('/', '_')}` });
          for (const k of ['cold', 'cached']) ((times[`${tool} ${platform} ${k}`] ??= [])).push(r[k]);
        }
      }
    }
    report(times, { before, after: load(), hostHandler: binfmt.present() });
  } finally {
    binfmt.disable();
    untrap();
    await cleanup();
  }
}

function report(times, o) {
  const m = (tool, platform, kind) => median(times[`${tool} ${platform} ${kind}`]);
  const rows = [];
  for (const platform of ['linux/amd64', 'linux/arm64']) {
    for (const kind of ['cold', 'cached']) {
      const h = m('hoist', platform, kind);
      const b = m('buildah', platform, kind);
      rows.push([`${platform} ${kind}${platform === 'linux/arm64' ? ' (emulated)' : ''}`, fmt(h), fmt(b), (h / b).toFixed(2)]);
    }
  }
  table(`multi-platform: apps/debian-multistage, hoist vs buildah bud --isolation chroot (median of ${RUNS}, interleaved; hoist arm64 with no host binfmt handler, buildah arm64 with qemu-aarch64 registered, flag F)`, ['case', 'hoist', 'buildah', 'hoist/buildah'], rows);
  const ratio = (tool, kind) => (m(tool, 'linux/arm64', kind) / m(tool, 'linux/amd64', kind)).toFixed(2);
  table('emulated arm64 / native amd64 (same Dockerfile, same machine)', ['tool', 'cold', 'cached'], ['hoist', 'buildah'].map((t) => [t, ratio(t, 'cold'), ratio(t, 'cached')]));
  console.log(`\n/proc/loadavg: ${o.before} before, ${o.after} after; ${os.cpus().length} CPUs; host aarch64 handler left registered: ${o.hostHandler ? 'yes (it was there before)' : 'no'}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
