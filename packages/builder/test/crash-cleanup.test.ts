/**
 * A RUN's container lives no longer than the hoist process that started it; what a killed
 * process leaves (containers, cgroups, bundles, secrets, etc files, mounts) is reclaimed at once
 * by its watchdog and, failing that, by the next hoist start; secrets are never on disk nor
 * readable by other users; signals exit 128+n after cleaning up, a second Ctrl-C included; ARG and
 * ENV names that look like secrets get BuildKit's SecretsUsedInArgOrEnv warning.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { hoist, mountsUnder, tempDir } from '@hoist/testkit';
import { run, startBaseEnv, type BaseEnv } from './helpers/env.js';
import { build, startBuild, writeContext } from './helpers/builds.js';

let base: BaseEnv;
let work: string;
let busybox: string;

beforeAll(async () => {
  [base, work] = await Promise.all([startBaseEnv(), tempDir('builder-crash')]);
  busybox = base.refs.busybox!;
}, 120_000);

afterAll(async () => {
  await base?.stop();
  if (work) await fsp.rm(work, { recursive: true, force: true });
});

const CGROUP_FS = '/sys/fs/cgroup';

/** Cgroup directories of the containers of hoist process `pid` (runc puts them at <hierarchy>/hoist/<id>). */
async function cgroupDirs(pid: number): Promise<string[]> {
  const parents = [path.join(CGROUP_FS, 'hoist')];
  for (const h of await fsp.readdir(CGROUP_FS)) parents.push(path.join(CGROUP_FS, h, 'hoist'));
  const out: string[] = [];
  for (const p of parents) for (const n of await fsp.readdir(p).catch(() => [] as string[])) if (n.startsWith(`hoist-${pid}-`)) out.push(path.join(p, n));
  return out;
}

/** Every process in the containers of hoist process `pid`. */
async function containerProcs(pid: number): Promise<number[]> {
  const procs = new Set<number>();
  for (const d of await cgroupDirs(pid)) {
    const text = await fsp.readFile(path.join(d, 'cgroup.procs'), 'utf8').catch(() => '');
    for (const l of text.split('\n').filter(Boolean)) procs.add(Number(l));
  }
  return [...procs];
}

/** Running (a zombie has finished running: it only waits to be reaped). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

/** Poll `cond` every 50 ms until it holds or `ms` have passed; its last value. */
async function within(ms: number, cond: () => boolean | Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function runcContainers(store: string): Promise<string[]> {
  return fsp.readdir(path.join(store, 'runtime', 'runc')).catch(() => [] as string[]);
}

/** What hoist process `pid` left: runtime state, bundles, etc dirs, any tmp entry, cgroups, mounts. */
async function leftovers(store: string, pid: number): Promise<string[]> {
  const out: string[] = [];
  for (const id of await runcContainers(store)) if (id.startsWith(`hoist-${pid}-`)) out.push(`runtime state ${id}`);
  const owned = (name: string): boolean => {
    const owner = /(?:^|-)(\d+)(?:-[0-9a-f]+)?$/.exec(name);
    return !!owner && Number(owner[1]) === pid;
  };
  const tmp = path.join(store, 'tmp');
  for (const n of await fsp.readdir(tmp).catch(() => [] as string[])) {
    if (owned(n)) out.push(`tmp/${n}`);
    if (n === 'bundles') for (const b of await fsp.readdir(path.join(tmp, n))) out.push(`bundle ${b}`);
  }
  out.push(...(await cgroupDirs(pid)).map((d) => `cgroup ${d}`));
  for (const m of await mountsUnder(store)) if (path.relative(store, m).split('/').some(owned)) out.push(`mount ${m}`);
  return out;
}

async function started(b: ReturnType<typeof startBuild>, marker: RegExp): Promise<void> {
  if (!(await within(60_000, () => marker.test(b.stderr())))) throw new Error(`the build never started its RUN:\n${b.stderr()}`);
}

/** Kill -9 one build and its watchdog, run another hoist command, check what it reclaimed and kept. */
async function deadAndLive(store: string, dead: ReturnType<typeof startBuild>, live: ReturnType<typeof startBuild>): Promise<void> {
  const [deadPid, livePid] = [dead.child.pid!, live.child.pid!];
  const [deadProcs, liveProcs] = [await containerProcs(deadPid), await containerProcs(livePid)];
  expect([deadProcs.length > 0, liveProcs.length > 0]).toEqual([true, true]);

  // the watchdog: a shell in its own session whose arguments end with the store and the owner's pid
  const dog = await run('pgrep', ['-f', `reclaim-main\\.js ${store} ${deadPid}$`]);
  const dogPids = dog.stdout.split('\n').filter(Boolean).map(Number);
  expect(dogPids).toHaveLength(1);
  process.kill(dogPids[0]!, 'SIGKILL');
  dead.child.kill('SIGKILL');
  await dead.done;
  expect(deadProcs.some(running)).toBe(true); // nothing reclaimed it yet

  const next = await hoist(['images', '--root', store]);
  expect(next.code).toBe(0);
  await within(2000, () => deadProcs.every((p) => !running(p)));
  expect(deadProcs.filter(running)).toEqual([]);
  expect(await leftovers(store, deadPid)).toEqual([]);
  // the live build is untouched, and stops cleanly on SIGTERM (exit 143)
  expect(liveProcs.filter(running)).toEqual(liveProcs);
  expect((await runcContainers(store)).filter((id) => id.startsWith(`hoist-${livePid}-`))).toHaveLength(1);
  live.child.kill('SIGTERM');
  const res = await live.done;
  expect(res.code).toBe(143);
  expect(await leftovers(store, livePid)).toEqual([]);
  expect(liveProcs.filter(running)).toEqual([]);
}

describe('kill -9 of hoist during a RUN', () => {
  it('a secret step: nothing holding the secret is readable by uid 65534 or on disk, and nothing under the store holds it after the next command', async () => {
    const store = path.join(work, 'store-secret');
    const secret = `hoist-crash-secret-${randomBytes(8).toString('hex')}`;
    const secretFile = path.join(work, 'crash-secret.txt');
    await fsp.writeFile(secretFile, secret);
    const ctx = await writeContext(path.join(work, 'ctx-secret'), {
      Dockerfile: `FROM ${busybox}\nRUN --mount=type=secret,id=tok,env=TOKEN --mount=type=secret,id=tok test -s /run/secrets/tok && echo started && sleep 30\n`,
    });
    const b = startBuild(store, ctx, ['--secret', `id=tok,src=${secretFile}`]);
    await started(b, /^#\d+ started$/m);

    // even were the store traversable by everyone, uid 65534 could read nothing holding the secret
    await fsp.chmod(work, 0o755);
    await fsp.chmod(store, 0o755);
    const asNobody = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'grep', '-rlsD', 'skip', secret, store]);
    expect(asNobody.stdout).toBe('');
    // as root: the secret is in the bundle (env) and the secret file, both in memory, root only
    const holders = (await run('grep', ['-rlsD', 'skip', secret, store])).stdout.split('\n').filter(Boolean);
    expect(holders.length).toBeGreaterThan(0);
    const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' '));
    for (const f of holders) {
      const fsOf = mounts.filter((m) => f.startsWith(`${m[1]}/`)).sort((a, c) => c[1]!.length - a[1]!.length)[0]!;
      const dirMode = (await fsp.stat(fsOf[1]!)).mode & 0o777;
      const fileMode = (await fsp.stat(f)).mode & 0o777;
      expect({ f, fs: fsOf[2], dirMode: dirMode.toString(8), groupOrOtherBits: fileMode & 0o077 }).toEqual({ f, fs: 'tmpfs', dirMode: '700', groupOrOtherBits: 0 });
    }

    b.child.kill('SIGKILL');
    await b.done;
    const next = await hoist(['images', '--root', store]);
    expect(next.code).toBe(0);
    const after = await run('grep', ['-rlsD', 'skip', secret, store]);
    expect(after.stdout).toBe('');
  }, 120_000);

  it('RUN sleep 30: no process of the RUN is alive 2 s later, and the next start leaves no runtime state, bundle, etc dir or cgroup behind', async () => {
    const store = path.join(work, 'store-sleep');
    const ctx = await writeContext(path.join(work, 'ctx-sleep'), { Dockerfile: `FROM ${busybox}\nRUN echo started && sleep 30\n` });
    const b = startBuild(store, ctx);
    await started(b, /^#\d+ started$/m);
    const pid = b.child.pid!;
    const procs = await containerProcs(pid);
    expect(procs.length).toBeGreaterThan(0);

    b.child.kill('SIGKILL');
    await b.done;
    await within(2000, () => procs.every((p) => !running(p)));
    expect(procs.filter(running)).toEqual([]);
    const next = await hoist(['images', '--root', store]);
    expect(next.code).toBe(0);
    expect(await leftovers(store, pid)).toEqual([]);
  }, 120_000);

  it('with its watchdog killed too, the next start kills and removes the dead build\'s container and never touches a live build', async () => {
    const store = path.join(work, 'store-twice');
    const deadCtx = await writeContext(path.join(work, 'ctx-dead'), { Dockerfile: `FROM ${busybox}\nRUN echo dead-started && sleep 30\n` });
    const liveCtx = await writeContext(path.join(work, 'ctx-live'), { Dockerfile: `FROM ${busybox}\nRUN echo live-started && sleep 30\n` });
    const dead = startBuild(store, deadCtx);
    await started(dead, /^#\d+ dead-started$/m);
    const live = startBuild(store, liveCtx);
    await started(live, /^#\d+ live-started$/m);
    try {
      await deadAndLive(store, dead, live);
    } finally {
      live.child.kill('SIGKILL');
      dead.child.kill('SIGKILL');
    }
  }, 180_000);
});

describe('signals', () => {
  it('more SIGINTs after the first, until hoist has exited, still clean up: exit 130 (never death by the signal), no mounts, no containers', async () => {
    const store = path.join(work, 'store-sigint');
    const ctx = await writeContext(path.join(work, 'ctx-sigint'), { Dockerfile: `FROM ${busybox}\nRUN echo started && sleep 30\n` });
    const b = startBuild(store, ctx);
    await started(b, /^#\d+ started$/m);
    const procs = await containerProcs(b.child.pid!);
    // a user pressing Ctrl-C again and again until hoist is gone: some land during the
    // cleanup, some while Node is exiting (where its default action would kill hoist)
    b.child.kill('SIGINT');
    const again = setInterval(() => b.child.kill('SIGINT'), 2);
    const res = await b.done.finally(() => clearInterval(again));
    expect({ code: res.code, signal: res.signal }).toEqual({ code: 130, signal: null });
    expect(res.stderr.match(/SIGINT: stopping/g)).toHaveLength(1);
    expect(res.stderr).toContain('build cancelled');
    expect(await mountsUnder(store)).toEqual([]);
    expect(await runcContainers(store)).toEqual([]);
    expect(await leftovers(store, b.child.pid!)).toEqual([]);
    await within(2000, () => procs.every((p) => !running(p)));
    expect(procs.filter(running)).toEqual([]);
  }, 120_000);
});

describe('SecretsUsedInArgOrEnv', () => {
  it('ARG NPM_TOKEN and ENV AWS_SECRET_ACCESS_KEY are warned about with their line and the rule; the build succeeds', async () => {
    const ctx = await writeContext(path.join(work, 'ctx-lint'), {
      Dockerfile: `FROM ${busybox}\nARG NPM_TOKEN\nENV AWS_SECRET_ACCESS_KEY=not-a-real-one\nARG NODE_VERSION=20\nRUN true\n`,
    });
    const r = await build(path.join(work, 'store-lint'), ctx);
    expect(r.code).toBe(0);
    const warnings = r.stderr.split('\n').filter((l) => l.includes('SecretsUsedInArgOrEnv'));
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/^WARNING: SecretsUsedInArgOrEnv: .*ARG "NPM_TOKEN".*\(line 2\)$/);
    expect(warnings[1]).toMatch(/^WARNING: SecretsUsedInArgOrEnv: .*ENV "AWS_SECRET_ACCESS_KEY".*\(line 3\)$/);
  }, 60_000);
});
