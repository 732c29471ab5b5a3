/**
 * `hoist build --load` (issue 12): the docker-archive goes to the Docker Engine API
 * (`POST /images/load`) over DOCKER_HOST's unix socket — here a fake daemon in the test that
 * keeps what it receives, which skopeo and tar then read — and without a daemon the build
 * refuses the flag up front, naming `-o type=docker`.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { hoist, run, storeWithBusybox, tempDir } from '@hoist/testkit';

interface FakeDaemon {
  requests: Array<{ method: string; url: string; contentType: string | undefined; body: Buffer }>;
  stop(): Promise<void>;
}

async function fakeDocker(socketPath: string, answer: (body: Buffer) => { status: number; lines: object[] }): Promise<FakeDaemon> {
  const requests: FakeDaemon['requests'] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({ method: req.method ?? '', url: req.url ?? '', contentType: req.headers['content-type'], body });
      const a = answer(body);
      res.writeHead(a.status, { 'content-type': 'application/json' });
      res.end(a.lines.map((l) => JSON.stringify(l) + '\n').join(''));
    });
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return { requests, stop: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe('build --load', () => {
  let root: string;
  let work: string;
  let ctx: string;

  beforeAll(async () => {
    [root, work] = await Promise.all([storeWithBusybox(), tempDir('load')]);
    ctx = path.join(work, 'ctx');
    await fsp.mkdir(ctx);
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox:latest\nRUN echo loaded > /loaded.txt\n');
  });

  afterAll(async () => {
    await fsp.rm(root, { recursive: true, force: true });
    await fsp.rm(work, { recursive: true, force: true });
  });

  it('streams a valid docker-archive into POST /images/load and prints what the daemon loaded', async () => {
    const sock = path.join(work, 'docker.sock');
    const daemon = await fakeDocker(sock, () => ({ status: 200, lines: [{ stream: 'Loaded image: app:1\n' }] }));
    try {
      const iid = path.join(work, 'iid');
      const r = await hoist(['build', '--root', root, '--progress', 'plain', '-t', 'app:1', '--load', '--iidfile', iid, ctx], { env: { DOCKER_HOST: `unix://${sock}` } });
      expect(r.code).toBe(0);
      expect(r.stderr).toContain('Loaded image: app:1');
      expect(daemon.requests.map((q) => [q.method, q.url, q.contentType])).toEqual([['POST', '/images/load', 'application/x-tar']]);
      const archive = path.join(work, 'received.tar');
      await fsp.writeFile(archive, daemon.requests[0]!.body);
      // skopeo reads it as docker load would: the tag and the config are there
      const insp = await run('skopeo', ['inspect', '--config', `docker-archive:${archive}`]);
      expect(insp.code).toBe(0);
      const cfg = JSON.parse(insp.stdout) as { rootfs: { diff_ids: string[] } };
      expect(cfg.rootfs.diff_ids.length).toBe(2);
      const x = path.join(work, 'x');
      await fsp.mkdir(x);
      expect((await run('tar', ['-x', '-f', archive, '-C', x])).code).toBe(0);
      const manifest = JSON.parse(await fsp.readFile(path.join(x, 'manifest.json'), 'utf8')) as Array<{ Config: string; RepoTags: string[]; Layers: string[] }>;
      expect(manifest).toHaveLength(1);
      expect(manifest[0]!.RepoTags).toEqual(['app:1']);
      const configBytes = await fsp.readFile(path.join(x, manifest[0]!.Config));
      // the image docker now has is the one --iidfile names
      expect(`sha256:${createHash('sha256').update(configBytes).digest('hex')}`).toBe(await fsp.readFile(iid, 'utf8'));
      for (const l of manifest[0]!.Layers) expect((await fsp.stat(path.join(x, l))).isFile()).toBe(true);
    } finally {
      await daemon.stop();
    }
  });

  it('an error in the daemon\'s answer fails the build with it (exit 1)', async () => {
    const sock = path.join(work, 'docker-err.sock');
    const daemon = await fakeDocker(sock, () => ({ status: 200, lines: [{ errorDetail: { message: 'no space left on device' }, error: 'no space left on device' }] }));
    try {
      const r = await hoist(['build', '--root', root, '-t', 'app:2', '--load', ctx], { env: { DOCKER_HOST: `unix://${sock}` } });
      expect(r.stderr).toContain('docker load: no space left on device');
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(r.code).toBe(1);
    } finally {
      await daemon.stop();
    }
  });

  it('without a daemon: exit 2 before building, naming -o type=docker', async () => {
    const r = await hoist(['build', '--root', root, '--progress', 'plain', '-t', 'app:3', '--load', ctx], { env: { DOCKER_HOST: `unix://${path.join(work, 'none.sock')}` } });
    expect(r.stderr).toMatch(/--load: no Docker daemon \(nothing listens at DOCKER_HOST=unix:\/\/.*none\.sock\); write a docker-archive instead with -o type=docker,dest=image\.tar/);
    expect(r.stderr).not.toContain('RUN echo loaded');
    expect(r.code).toBe(2);
  });
});
