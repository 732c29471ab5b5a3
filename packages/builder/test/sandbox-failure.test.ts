/**
 * Secrets never reach the image, failures report what Docker reports and clean up, SIGTERM
 * stops a build cleanly, and the sandbox options (--ssh, --memory/--pids-limit) take effect.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import * as path from 'node:path';
import { hoist, mountsUnder, tempDir } from '@hoist/testkit';
import { run, startBaseEnv, type BaseEnv } from './helpers/env.js';
import { build, startBuild, writeContext } from './helpers/builds.js';

let base: BaseEnv;
let work: string;
let busybox: string;

beforeAll(async () => {
  [base, work] = await Promise.all([startBaseEnv(), tempDir('builder-sandbox')]);
  busybox = base.refs.busybox!;
}, 120_000);

afterAll(async () => {
  await base?.stop();
  if (work) await fsp.rm(work, { recursive: true, force: true });
});

/** Every blob of the store, decompressed when gzip, with its digest. */
async function storeBlobs(store: string): Promise<Array<{ name: string; data: Buffer }>> {
  const dir = path.join(store, 'oci', 'blobs', 'sha256');
  const out = [];
  for (const name of await fsp.readdir(dir)) {
    let data = await fsp.readFile(path.join(dir, name));
    if (data[0] === 0x1f && data[1] === 0x8b) data = gunzipSync(data);
    out.push({ name, data });
  }
  return out;
}

async function runcContainers(store: string): Promise<string[]> {
  const r = await run('runc', ['--root', path.join(store, 'runtime', 'runc'), 'list', '-q']);
  if (r.code !== 0 && !/no such file/i.test(r.stderr)) throw new Error(`runc list: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean);
}

describe('secrets', () => {
  it('a secret used by RUN (as a file and as env) appears in no layer, config, history or cache record', async () => {
    const store = path.join(work, 'store-secret');
    const secret = 'hoist-SECRET-7f3a9c1e-do-not-leak';
    const md5 = createHash('md5').update(secret).digest('hex');
    const secretFile = path.join(work, 'secret.txt');
    await fsp.writeFile(secretFile, secret);
    const ctx = await writeContext(path.join(work, 'ctx-secret'), {
      Dockerfile: [
        `FROM ${busybox}`,
        `RUN --mount=type=secret,id=tok test "$(md5sum < /run/secrets/tok | cut -d' ' -f1)" = ${md5} && echo used > /used-file`,
        'RUN --mount=type=secret,id=tok,env=TOKEN test -n "$TOKEN" && echo "${#TOKEN}" > /token-length',
        'RUN --mount=type=secret,id=tok,target=/etc/app/token cat /etc/app/token | md5sum > /token-md5',
        '',
      ].join('\n'),
    });
    const r = await build(store, ctx, ['-t', 'secret:1', '--secret', `id=tok,src=${secretFile}`]);
    expect(r.stderr).not.toContain('ERROR');
    expect(r.code).toBe(0);
    const blobs = await storeBlobs(store);
    expect(blobs.length).toBeGreaterThan(3);
    for (const b of blobs) expect({ blob: b.name, leaks: b.data.includes(secret) }).toEqual({ blob: b.name, leaks: false });
    const inspect = await hoist(['inspect', '--root', store, 'secret:1']);
    expect(inspect.stdout).not.toContain(secret);
    const cacheDir = path.join(store, 'cache');
    const grep = await run('grep', ['-r', '-l', secret, cacheDir]);
    expect(grep.stdout).toBe('');
    // the steps did see it, and the mount points are gone
    const files = await hoist(['run', '--root', store, 'secret:1', 'sh', '-c', 'cat /used-file /token-length; ls /run/secrets /etc/app 2>&1 | head -2']);
    expect(files.stdout).toContain('used\n33\n');
    expect(files.stdout).toMatch(/No such file or directory/);
  }, 60_000);

  it('a missing required secret fails the step with a hint', async () => {
    const ctx = await writeContext(path.join(work, 'ctx-nosecret'), { Dockerfile: `FROM ${busybox}\nRUN --mount=type=secret,id=absent,required=true cat /run/secrets/absent\n` });
    const r = await build(path.join(work, 'store-nosecret'), ctx);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/secret "absent" is required.*--secret id=absent/);
  }, 60_000);
});

describe('failures', () => {
  let store: string;
  beforeAll(() => {
    store = path.join(work, 'store-fail');
  });

  it('a failing RUN prints its last 20 lines, exit code, stage, step and line; exits 1; leaves nothing behind', async () => {
    const ctx = await writeContext(path.join(work, 'ctx-fail'), {
      Dockerfile: [`FROM ${busybox} AS builder`, 'RUN echo fine', 'RUN for i in $(seq 1 30); do echo "output line $i"; done; exit 7', ''].join('\n'),
    });
    const r = await build(store, ctx, ['-t', 'fails:1']);
    expect(r.code).toBe(1);
    const tail = r.stderr.slice(r.stderr.indexOf('------'));
    expect(tail).toContain(' > output line 30');
    expect(tail).toContain(' > output line 11');
    expect(tail).not.toContain(' > output line 10\n');
    expect(r.stderr).toContain('exit code: 7');
    expect(r.stderr).toMatch(/Dockerfile:3/);
    expect(r.stderr).toContain('[builder 2/2] RUN for i in');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(await mountsUnder(store)).toEqual([]);
    expect(await runcContainers(store)).toEqual([]);
    const tmp = await fsp.readdir(path.join(store, 'tmp')).catch(() => [] as string[]);
    expect(tmp.filter((n) => !n.startsWith('etc-') && n !== 'bundles')).toEqual([]);
    expect(await fsp.readdir(path.join(store, 'tmp', 'bundles')).catch(() => [])).toEqual([]);
    const images = await hoist(['images', '--root', store, '--json']);
    expect(images.stdout).not.toContain('fails:1');
    const fsck = await hoist(['fsck', '--root', store]);
    expect(fsck.stderr + fsck.stdout).not.toMatch(/error/i);
    expect(fsck.code).toBe(0);
  }, 60_000);

  it('SIGTERM during a RUN stops the sandbox, unmounts everything and exits 143', async () => {
    const ctx = await writeContext(path.join(work, 'ctx-sigterm'), { Dockerfile: `FROM ${busybox}\nRUN echo sleeping && sleep 30\n` });
    const b = startBuild(store, ctx, ['-t', 'sigterm:1']);
    const t0 = Date.now();
    while (!/^#\d+ sleeping$/m.test(b.stderr())) {
      if (Date.now() - t0 > 30_000) throw new Error(`the build never started its RUN:\n${b.stderr()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const during = await runcContainers(store);
    b.child.kill('SIGTERM');
    const res = await b.done;
    expect(during).toHaveLength(1);
    expect(res.code).toBe(143);
    expect(res.stderr).toMatch(/SIGTERM/);
    expect(await mountsUnder(store)).toEqual([]);
    expect(await runcContainers(store)).toEqual([]);
    const ps = await run('pgrep', ['-f', 'sleep 30']);
    expect(ps.stdout.trim()).toBe('');
    const fsck = await hoist(['fsck', '--root', store]);
    expect(fsck.code).toBe(0);
    // the store is still usable: the same build completes afterwards
    const again = await build(store, await writeContext(path.join(work, 'ctx-after'), { Dockerfile: `FROM ${busybox}\nRUN echo ok > /ok\n` }), ['-t', 'after:1']);
    expect(again.code).toBe(0);
  }, 60_000);
});

describe('sandbox options', () => {
  it('--memory and --pids-limit reach the cgroups of RUN steps', async () => {
    const ctx = await writeContext(path.join(work, 'ctx-limits'), {
      Dockerfile: [
        `FROM ${busybox}`,
        'RUN cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max',
        '',
      ].join('\n'),
    });
    const r = await build(path.join(work, 'store-limits'), ctx, ['--memory', '96m', '--pids-limit', '64', '--cpus', '1']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/#\d+ 64\n/);
    expect(r.stderr).toMatch(/#\d+ 100663296\n/);
    const bad = await build(path.join(work, 'store-limits'), ctx, ['--memory', 'lots']);
    expect(bad.code).toBe(2);
  }, 60_000);

  it('RUN --mount=type=ssh gets the agent given with --ssh default', async () => {
    const sock = path.join(work, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 100 && !(await fsp.stat(sock).catch(() => undefined)); i++) await new Promise((r) => setTimeout(r, 50));
      const ctx = await writeContext(path.join(work, 'ctx-ssh'), {
        Dockerfile: `FROM ${busybox}\nRUN --mount=type=ssh test -S "$SSH_AUTH_SOCK" && echo "agent at $SSH_AUTH_SOCK"\n`,
      });
      const r = await build(path.join(work, 'store-ssh'), ctx, ['--ssh', 'default'], { SSH_AUTH_SOCK: sock });
      expect(r.stderr).toContain('agent at /run/buildkit/ssh_agent.0');
      expect(r.code).toBe(0);
      const required = await writeContext(path.join(work, 'ctx-ssh-required'), { Dockerfile: `FROM ${busybox}\nRUN --mount=type=ssh,required=true true\n` });
      const none = await build(path.join(work, 'store-ssh'), required, [], { SSH_AUTH_SOCK: '' });
      expect(none.code).toBe(1);
      expect(none.stderr).toContain('--ssh default');
    } finally {
      agent.kill();
    }
  }, 60_000);
});
