#!/usr/bin/env node
// `npm run soak` (not part of `npm test`): kill -9 hoist at random moments of `build`, `push`,
// `pull` and `prune`; after each kill run `hoist fsck` and the same command again, then look for
// anything the killed process left: processes of its RUN steps, runtime state, cgroups, mounts,
// temp files, leases, the build secret anywhere in the store. Prints the trials, inconsistent
// stores, failed reruns and leftovers (target 0, 0, 0) and exits 1 unless all three are 0.
//
// SOAK_KILLS   kills to make (default 50; each trial whose command ended before the kill counts
//              as a trial, not a kill)
// SOAK_SEED    seed of the random choices (default: random; printed, so a run can be repeated)
// Needs root, runc, Debian's docker-registry and a built tree (`npm run soak` builds it).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { HOIST_BIN, hoist, run, startRegistry, storeWithBusybox, tempDir } from '../packages/testkit/dist/index.js';

const KILLS = Number(process.env.SOAK_KILLS ?? 50);
const SEED = Number(process.env.SOAK_SEED ?? randomBytes(4).readUInt32LE(0));
const OPS = ['build', 'push', 'pull', 'prune'];
const RERUN_TIMEOUT_MS = 300_000;

/** mulberry32: a small seeded PRNG, so that a run can be repeated with SOAK_SEED. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle(list, random) {
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [list[i], list[j]] = [list[j], list[i]];
  }
  return list;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function must(args, what) {
  const r = await hoist(args, { timeoutMs: RERUN_TIMEOUT_MS });
  if (r.code !== 0) throw new Error(`${what}: hoist ${args.join(' ')} exited ${r.code}\n${r.stderr}`);
  return r;
}

/** Start hoist, SIGKILL it after `delayMs`; whether the kill landed while it ran, and its pid. */
async function killAfter(args, delayMs) {
  const child = spawn(process.execPath, [HOIST_BIN, ...args], { stdio: ['ignore', 'ignore', 'ignore'], env: { ...process.env, NO_COLOR: '1' } });
  let exited = false;
  const done = new Promise((r) => child.on('exit', () => ((exited = true), r())));
  await Promise.race([sleep(delayMs), done]);
  const killed = !exited;
  if (killed) child.kill('SIGKILL');
  await done;
  return { killed, pid: child.pid };
}

/** Everything of the dead process `pid` (or of any finished command) still in the store or on the host. */
async function leftovers(env, store, pid) {
  const out = [];
  const list = async (rel) => (await fsp.readdir(path.join(store, rel)).catch(() => [])).map((n) => `${rel}/${n}`);
  for (const rt of await fsp.readdir(path.join(store, 'runtime')).catch(() => [])) out.push(...(await list(`runtime/${rt}`)));
  for (const rel of ['tmp', 'snapshots/mounts', 'snapshots/tmp', 'oci/tmp', 'active']) out.push(...(await list(rel)));
  const mounts = (await fsp.readFile('/proc/mounts', 'utf8')).split('\n').map((l) => l.split(' ')[1] ?? '');
  out.push(...mounts.filter((m) => m.startsWith(store + '/')).map((m) => `mount ${m}`));
  const cg = await run('sh', ['-c', `ls -d /sys/fs/cgroup/hoist/hoist-${pid}-* /sys/fs/cgroup/*/hoist/hoist-${pid}-* 2>/dev/null`]);
  out.push(...cg.stdout.split('\n').filter(Boolean).map((d) => `cgroup ${d}`));
  const procs = await run('pgrep', ['-af', 'soak-step']);
  out.push(...procs.stdout.split('\n').filter(Boolean).map((p) => `process ${p}`));
  const dog = await run('pgrep', ['-f', `reclaim-main\\.js ${store} ${pid}$`]);
  out.push(...dog.stdout.split('\n').filter(Boolean).map((p) => `watchdog ${p}`));
  const secret = await run('grep', ['-rlsD', 'skip', env.secret, store]);
  out.push(...secret.stdout.split('\n').filter(Boolean).map((f) => `secret in ${f}`));
  return out;
}

/** The command of each operation, and what has to hold before it runs (not killed). */
function operations(env) {
  return {
    build: {
      prepare: async (n) => n,
      args: (n) => ['build', '--root', env.a, '--progress', 'plain', '--secret', `id=tok,src=${env.secretFile}`, '--build-arg', `N=${n}`, '-t', 'soak:latest', env.ctx],
      store: env.a,
    },
    push: {
      prepare: async (n) => n,
      args: (n) => ['push', '--root', env.a, '--progress', 'plain', 'soak:latest', `${env.registry.host}/soak/app:${n}`],
      store: env.a,
      after: (n) => (env.pushed = n),
    },
    pull: {
      prepare: async (n) => {
        await hoist(['rm', '--root', env.b, `${env.registry.host}/soak/app:${env.pushed}`]);
        await must(['prune', '--root', env.b, '-f', '--all'], 'emptying the pull store');
        return n;
      },
      args: () => ['pull', '--root', env.b, '--progress', 'plain', `${env.registry.host}/soak/app:${env.pushed}`],
      store: env.b,
    },
    prune: {
      prepare: async (n) => n,
      args: () => ['prune', '--root', env.a, '-f', '--all'],
      store: env.a,
    },
  };
}

async function setup() {
  const work = await tempDir('soak');
  const [registry, seed] = await Promise.all([startRegistry(), storeWithBusybox()]);
  await must(['push', '--root', seed, '--progress', 'quiet', 'busybox:latest', `${registry.host}/soak/busybox:latest`], 'seeding the registry');
  const secret = `soak-secret-${randomBytes(8).toString('hex')}`;
  const env = { work, registry, seed, secret, secretFile: path.join(work, 'secret.txt'), ctx: path.join(work, 'ctx'), a: path.join(work, 'store-a'), b: path.join(work, 'store-b'), pushed: 'setup' };
  await fsp.writeFile(env.secretFile, secret);
  await fsp.mkdir(env.ctx);
  await fsp.writeFile(
    path.join(env.ctx, 'Dockerfile'),
    [
      `FROM ${registry.host}/soak/busybox:latest`,
      'ARG N=0',
      'RUN --mount=type=secret,id=tok,env=TOKEN --mount=type=secret,id=tok test -n "$TOKEN" && test -s /run/secrets/tok && echo "soak-step-1 $N" && sleep 1',
      'RUN head -c 24000000 /dev/urandom > /data && echo "soak-step-2 $N" && sleep 1',
      'RUN echo "soak-step-3 $N" && sleep 2',
      '',
    ].join('\n'),
  );
  return env;
}

/** How long each operation takes when not killed: the kill lands uniformly within that. */
async function calibrate(env, ops) {
  const ms = {};
  for (const op of OPS) {
    const n = await ops[op].prepare(`cal-${op}`);
    const t0 = Date.now();
    await must(ops[op].args(n), `calibrating ${op}`);
    ms[op] = Date.now() - t0;
    ops[op].after?.(n);
  }
  return ms;
}

async function trial(env, ops, op, n, delayMs) {
  const o = ops[op];
  const arg = await o.prepare(n);
  const { killed, pid } = await killAfter(o.args(arg), delayMs);
  const fsck = await hoist(['fsck', '--root', o.store], { timeoutMs: RERUN_TIMEOUT_MS });
  const rerun = await hoist(o.args(arg), { timeoutMs: RERUN_TIMEOUT_MS });
  if (rerun.code === 0) o.after?.(arg);
  // the killed process's watchdog may still be finishing: give it a bounded moment
  for (let i = 0; i < 100 && (await run('pgrep', ['-f', `reclaim-main\\.js ${o.store} ${pid}$`])).stdout.trim(); i++) await sleep(100);
  return { killed, pid, fsck, rerun, left: await leftovers(env, o.store, pid) };
}

async function main() {
  const random = prng(SEED);
  const env = await setup();
  const ops = operations(env);
  const stats = { trials: 0, kills: 0, inconsistent: 0, failedReruns: 0, leftovers: 0, byOp: Object.fromEntries(OPS.map((o) => [o, 0])) };
  try {
    const ms = await calibrate(env, ops);
    console.log(`soak: seed ${SEED}; undisturbed: ${OPS.map((o) => `${o} ${ms[o]} ms`).join(', ')}`);
    let round = [];
    while (stats.kills < KILLS && stats.trials < KILLS * 3) {
      // every operation once per round of four, in a random order
      if (round.length === 0) round = shuffle([...OPS], random);
      const op = round.pop();
      const delay = Math.floor(random() * ms[op] * 0.9);
      const n = `t${stats.trials}`;
      const r = await trial(env, ops, op, n, delay);
      stats.trials++;
      if (r.killed) (stats.kills++, stats.byOp[op]++);
      const notes = [];
      if (r.fsck.code !== 0) (stats.inconsistent++, notes.push(`fsck exit ${r.fsck.code}: ${r.fsck.stdout.trim()}`));
      if (r.rerun.code !== 0) (stats.failedReruns++, notes.push(`rerun exit ${r.rerun.code}: ${r.rerun.stderr.trim().split('\n').slice(-5).join(' | ')}`));
      if (r.left.length > 0) (stats.leftovers += r.left.length, notes.push(`leftovers: ${r.left.join(', ')}`));
      console.log(`#${stats.trials} ${op} ${r.killed ? `killed after ${delay} ms` : `finished before ${delay} ms`}${notes.length ? `\n    ${notes.join('\n    ')}` : ''}`);
    }
  } finally {
    await env.registry.stop();
    for (const s of [env.a, env.b]) await hoist(['prune', '--root', s, '-f', '--all']);
    await fsp.rm(env.work, { recursive: true, force: true });
    await fsp.rm(env.seed, { recursive: true, force: true });
  }
  console.log(`\ntrials: ${stats.trials} (kills: ${stats.kills}; ${OPS.map((o) => `${o} ${stats.byOp[o]}`).join(', ')})`);
  console.log(`inconsistent stores: ${stats.inconsistent}`);
  console.log(`failed reruns: ${stats.failedReruns}`);
  console.log(`leftovers: ${stats.leftovers}`);
  return stats.inconsistent + stats.failedReruns + stats.leftovers === 0 ? 0 : 1;
}

process.exitCode = await main();
