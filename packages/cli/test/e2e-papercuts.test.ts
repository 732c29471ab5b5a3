/**
 * The papercuts of issue 12 on the real CLI: `hoist --version`, images by the ID `hoist images`
 * prints, exit codes of rm/tag on a missing name, pure JSON progress with --push and failures,
 * one line per layer on pull, and `plan --target` marking stages the target never needs.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { hoist, makeTestTls, startRegistry, storeWithBusybox, tempDir, REPO_ROOT, type RunningRegistry } from '@hoist/testkit';

const HELLO = path.join(REPO_ROOT, 'fixtures', 'hello');

describe('papercuts', () => {
  let registry: RunningRegistry;
  let root: string;
  let work: string;

  beforeAll(async () => {
    [registry, root, work] = await Promise.all([startRegistry(), storeWithBusybox(), tempDir('papercuts')]);
    const r = await hoist(['build', '--root', root, '-q', '-t', 'hello:1', HELLO]);
    if (r.code !== 0) throw new Error(r.stderr);
  });

  afterAll(async () => {
    await registry?.stop();
    await fsp.rm(root, { recursive: true, force: true });
    await fsp.rm(work, { recursive: true, force: true });
  });

  it('hoist --version and -v print what hoist version prints', async () => {
    const v = await hoist(['version']);
    expect(v.stdout).toMatch(/^hoist \d+\.\d+\.\d+/);
    for (const flag of ['--version', '-v']) {
      const r = await hoist([flag]);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(v.stdout);
    }
  });

  it('inspect, run, tag and rm take the image ID that `hoist images` prints', async () => {
    const list = await hoist(['images', '--root', root]);
    const row = list.stdout.split('\n').find((l) => l.startsWith('hello '))!;
    const id = row.split(/\s+/)[2]!;
    expect(id).toMatch(/^[0-9a-f]{12}$/);
    const ins = await hoist(['inspect', '--root', root, id]);
    expect(ins.code).toBe(0);
    expect((JSON.parse(ins.stdout) as { descriptor: { digest: string } }).descriptor.digest).toBe(`sha256:${(JSON.parse((await hoist(['inspect', '--root', root, 'hello:1'])).stdout) as { descriptor: { digest: string } }).descriptor.digest.slice(7)}`);
    const run = await hoist(['run', '--root', root, id]);
    expect(run.stdout).toBe('Hello from hoist!\nbuilt by hoist as uid 0\nrunning as app\n');
    expect((await hoist(['tag', '--root', root, id, 'hello:copy'])).code).toBe(0);
    const rm = await hoist(['rm', '--root', root, `sha256:${id}`]);
    expect(rm.code).toBe(0);
    expect(rm.stdout.split('\n').filter(Boolean).sort()).toEqual(['untagged docker.io/library/hello:1', 'untagged docker.io/library/hello:copy']);
    expect((await hoist(['images', '--root', root])).stdout).not.toMatch(/^hello /m);
    const again = await hoist(['build', '--root', root, '-q', '-t', 'hello:1', HELLO]);
    expect(again.code).toBe(0);
  });

  it('inspect --format takes docker\'s Go-template fields', async () => {
    const r = await hoist(['inspect', '--root', root, '--format', '{{.Os}} {{.Config.Cmd}} {{index .Config.Labels "org.opencontainers.image.title"}} {{.Config.User}}', 'hello:1']);
    expect(r.stdout).toBe('linux [hello] hello app\n');
    const id = await hoist(['inspect', '--root', root, '-f', '{{.Id}}', 'hello:1']);
    const full = JSON.parse((await hoist(['inspect', '--root', root, 'hello:1'])).stdout) as { manifest: { config: { digest: string } } };
    expect(id.stdout).toBe(`${full.manifest.config.digest}\n`);
    const bad = await hoist(['inspect', '--root', root, '--format', '{{range .Config.Env}}{{end}}', 'hello:1']);
    expect(bad.code).toBe(2);
  });

  it('rm, tag and inspect of a missing name all exit 2 with the same message; rm still removes the names that exist', async () => {
    expect((await hoist(['tag', '--root', root, 'hello:1', 'hello:extra'])).code).toBe(0);
    const rm = await hoist(['rm', '--root', root, 'nope:1', 'hello:extra']);
    expect(rm.stderr).toContain('image nope:1 is not in the store; see `hoist images`');
    expect(rm.stdout).toBe('untagged hello:extra\n');
    expect(rm.code).toBe(2);
    for (const args of [['tag', 'nope:1', 'x:1'], ['inspect', 'nope:1']]) {
      const r = await hoist([args[0]!, '--root', root, ...args.slice(1)]);
      expect(r.stderr).toContain('image nope:1 is not in the store; see `hoist images`');
      expect(r.code).toBe(2);
    }
  });

  it('--progress=json with --push writes only JSON lines (pushed as an event); a failure is an error event', async () => {
    const ref = `${registry.host}/pc/hello:1`;
    const r = await hoist(['build', '--root', root, '--progress', 'json', '-t', ref, '--push', HELLO]);
    expect(r.code).toBe(0);
    const lines = r.stderr.split('\n').filter(Boolean);
    const events = lines.map((l) => JSON.parse(l) as { type: string; ref?: string });
    expect(events.filter((e) => e.type === 'pushed').map((e) => e.ref)).toEqual([ref]);
    const ctx = path.join(work, 'fails');
    await fsp.mkdir(ctx);
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox:latest\nRUN exit 3\n');
    const f = await hoist(['build', '--root', root, '--progress', 'json', ctx]);
    expect(f.code).toBe(1);
    const fe = f.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; message?: string; exitCode?: number; code?: string });
    const err = fe.filter((e) => e.type === 'error');
    expect(err).toHaveLength(1);
    expect(err[0]).toMatchObject({ exitCode: 1, code: 'STEP_FAILED' });
    expect(err[0]!.message).toContain('exit code: 3');
  });

  it('pull prints one line per layer, also for a layer of many progress steps', async () => {
    const ref = `${registry.host}/pc/pulled:1`;
    const ctx = path.join(work, 'big');
    await fsp.mkdir(ctx);
    // 4 MiB of random bytes: a layer blob of 8 progress steps (512 KiB each)
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox:latest\nRUN head -c 4194304 /dev/urandom > /big\n');
    expect((await hoist(['build', '--root', root, '-q', '-t', ref, '--push', ctx])).code).toBe(0);
    const fresh = await tempDir('pull-store');
    try {
      const r = await hoist(['pull', '--root', fresh, '--progress', 'plain', ref]);
      expect(r.code).toBe(0);
      const layerLines = r.stderr.split('\n').filter((l) => /^\S+ [0-9a-f]{12} /.test(l));
      const perLayer = new Map<string, number>();
      for (const l of layerLines) perLayer.set(l.split(' ')[1]!, (perLayer.get(l.split(' ')[1]!) ?? 0) + 1);
      expect(perLayer.size).toBe(2);
      expect([...perLayer.values()].every((n) => n === 1)).toBe(true);
    } finally {
      await fsp.rm(fresh, { recursive: true, force: true });
    }
  });

  it('plan --target marks the stages the target never needs (text and json)', async () => {
    const ctx = path.join(work, 'plan');
    await fsp.mkdir(ctx);
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox AS base\nRUN true\nFROM base AS test\nRUN make test\nFROM base AS app\nCMD ["app"]\n');
    const r = await hoist(['plan', '--target', 'app', ctx]);
    expect(r.code).toBe(0);
    const heads = r.stdout.split('\n').filter((l) => l.startsWith('stage '));
    expect(heads).toEqual(['stage 0 base: FROM busybox', 'stage 1 test (not needed by the target: skipped): FROM base  <- base', 'stage 2 app (target): FROM base  <- base']);
    const json = await hoist(['plan', '--target', 'app', '--format', 'json', ctx]);
    expect(json.code).toBe(0);
    const stages = (JSON.parse(json.stdout) as { stages: { name: string; skipped?: boolean }[] }).stages;
    expect(stages.map((s) => [s.name, s.skipped ?? false])).toEqual([['base', false], ['test', true], ['app', false]]);
  });

  it('a registry with a private CA: the TLS error names --tls-ca and --insecure-registry, and both flags work', async () => {
    const tls = await makeTestTls();
    const reg = await startRegistry({ httpExtra: tls.registryHttpExtra, tls: true, caFile: tls.caFile });
    try {
      const ref = `${reg.host}/pc/tls:1`;
      const env = { HOIST_REGISTRY_DEADLINE: '2' };
      const bad = await hoist(['push', '--root', root, 'hello:1', ref], { env });
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain('--tls-ca FILE');
      expect(bad.stderr).toContain(`--insecure-registry ${reg.host}`);
      const withCa = await hoist(['push', '--root', root, '--tls-ca', tls.caFile, 'hello:1', ref], { env });
      expect(withCa.stderr).not.toContain('ERROR');
      expect(withCa.code).toBe(0);
      const insecure = await hoist(['pull', '--root', root, '--insecure-registry', reg.host, ref], { env });
      expect(insecure.code).toBe(0);
      const build = await hoist(['build', '--root', root, '-q', '--tls-ca', tls.caFile, '-t', `${reg.host}/pc/tls:2`, '--push', HELLO], { env });
      expect(build.code).toBe(0);
      const missing = await hoist(['push', '--root', root, '--tls-ca', '/nonexistent/ca.pem', 'hello:1', ref]);
      expect(missing.stderr).toContain('--tls-ca /nonexistent/ca.pem: no such file');
      expect(missing.code).toBe(2);
    } finally {
      await reg.stop();
      await tls.remove();
    }
  });
});
