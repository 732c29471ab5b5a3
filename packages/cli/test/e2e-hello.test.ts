/**
 * The walking skeleton end to end, on the real parts: busybox imported offline, built with
 * hoist (RUN in runc), pushed to the real docker-registry, read back by skopeo and umoci,
 * run by runc; then a fully cached rebuild and a failing RUN.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { hoist, mountsUnder, run, startRegistry, storeWithBusybox, tempDir, REPO_ROOT, type RunningRegistry } from '@hoist/testkit';

const HELLO = path.join(REPO_ROOT, 'fixtures', 'hello');

describe('hello: build, push, read back with skopeo/umoci/runc', () => {
  let registry: RunningRegistry;
  let root: string;
  let work: string;
  let ref: string;
  let firstDigest: string;

  beforeAll(async () => {
    [registry, root, work] = await Promise.all([startRegistry(), storeWithBusybox(), tempDir('work')]);
    ref = `${registry.host}/demo/hello:1`;
  });

  afterAll(async () => {
    await registry?.stop();
    await fsp.rm(root, { recursive: true, force: true });
    await fsp.rm(work, { recursive: true, force: true });
  });

  it('builds fixtures/hello and pushes it', async () => {
    const r = await hoist(['build', '--root', root, '--progress', 'plain', '-t', ref, '--push', HELLO]);
    expect(r.stderr).toContain('pushed');
    expect(r.code).toBe(0);
    // a push carries buildx's default attestation (provenance mode=min): stdout is the digest of
    // the index that lists the image and its attestation manifest
    const top = r.stdout.trim();
    expect(top).toMatch(/^sha256:[a-f0-9]{64}$/);
    const raw = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]);
    expect(`sha256:${createHash('sha256').update(raw.stdout).digest('hex')}`).toBe(top);
    const idx = JSON.parse(raw.stdout) as { manifests: Array<{ digest: string; platform: { os: string; architecture: string } }> };
    expect(idx.manifests.map((m) => `${m.platform.os}/${m.platform.architecture}`)).toEqual(['linux/amd64', 'unknown/unknown']);
    firstDigest = idx.manifests[0]!.digest;
    // the local store keeps the image itself under the tag
    expect((JSON.parse((await hoist(['inspect', '--root', root, ref])).stdout) as { descriptor: { digest: string } }).descriptor.digest).toBe(firstDigest);
    expect(r.stderr).toMatch(/RUN echo "built by hoist/);
  });

  it('skopeo inspect shows the config', async () => {
    const r = await run('skopeo', ['inspect', '--tls-verify=false', '--config', `docker://${ref}`]);
    expect(r.stderr).toBe('');
    const cfg = JSON.parse(r.stdout) as { config: { Env: string[]; Cmd: string[]; WorkingDir: string; User: string; Labels: Record<string, string> } };
    expect(cfg.config.Env).toEqual(expect.arrayContaining(['GREETING_FILE=/app/greeting.txt', expect.stringMatching(/^PATH=/)]));
    expect(cfg.config.Cmd).toEqual(['hello']);
    expect(cfg.config.WorkingDir).toBe('/app');
    expect(cfg.config.User).toBe('app');
    expect(cfg.config.Labels['org.opencontainers.image.title']).toBe('hello');
  });

  it('skopeo copy + umoci unpack give the files; runc runs the greeting', async () => {
    const layout = path.join(work, 'layout');
    const cp = await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${ref}`, `oci:${layout}:hello`]);
    expect(cp.stderr).toBe('');
    expect(cp.code).toBe(0);
    const bundle = path.join(work, 'bundle');
    const un = await run('umoci', ['unpack', '--image', `${layout}:hello`, bundle]);
    expect(un.stderr).toBe('');
    expect(un.code).toBe(0);
    const rootfs = path.join(bundle, 'rootfs');
    expect(await fsp.readFile(path.join(rootfs, 'app/greeting.txt'), 'utf8')).toBe('Hello from hoist!\n');
    expect(await fsp.readFile(path.join(rootfs, 'app/built.txt'), 'utf8')).toBe('built by hoist as uid 0\n');
    expect((await fsp.stat(path.join(rootfs, 'usr/local/bin/hello'))).mode & 0o777).toBe(0o755);
    await expect(fsp.access(path.join(rootfs, 'app/README.md'))).rejects.toThrow();
    // run the bundle with runc as umoci generated it, non-interactively
    const cfgPath = path.join(bundle, 'config.json');
    const spec = JSON.parse(await fsp.readFile(cfgPath, 'utf8')) as { process: { terminal: boolean; args: string[] } };
    spec.process.terminal = false;
    await fsp.writeFile(cfgPath, JSON.stringify(spec));
    expect(spec.process.args).toEqual(['hello']);
    const id = `hoist-e2e-${process.pid}`;
    const rr = await run('runc', ['run', '--bundle', bundle, id]);
    await run('runc', ['delete', '--force', id]);
    expect(rr.stdout).toBe('Hello from hoist!\nbuilt by hoist as uid 0\nrunning as app\n');
    expect(rr.code).toBe(0);
  });

  it('hoist run starts the image command', async () => {
    const r = await hoist(['run', '--root', root, ref]);
    expect(r.stdout).toBe('Hello from hoist!\nbuilt by hoist as uid 0\nrunning as app\n');
    expect(r.code).toBe(0);
  });

  it('a rebuild is fully cached and gives the identical manifest digest', async () => {
    const r = await hoist(['build', '--root', root, '--progress', 'plain', '-t', ref, HELLO]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(firstDigest);
    const cached = r.stderr.split('\n').filter((l) => /^#\d+ CACHED$/.test(l)).length;
    // WORKDIR, two COPYs and the RUN
    expect(cached).toBe(4);
    expect(r.stderr).not.toMatch(/DONE/);
  });

  it('a failing RUN exits 1, names line, command and exit code, and leaves nothing behind', async () => {
    const ctx = path.join(work, 'failing');
    await fsp.mkdir(ctx, { recursive: true });
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox\nRUN echo about to fail\nRUN echo partial > /x && exit 3\n');
    const before = (await fsp.readdir(path.join(root, 'oci', 'blobs', 'sha256'))).length;
    const r = await hoist(['build', '--root', root, '--progress', 'plain', '-t', 'failing:1', ctx]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Dockerfile:3');
    expect(r.stderr).toContain('echo partial > /x && exit 3');
    expect(r.stderr).toContain('exit code: 3');
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(await mountsUnder(root)).toEqual([]);
    const images = await hoist(['images', '--root', root, '--json']);
    expect(JSON.parse(images.stdout).map((i: { ref: string }) => i.ref)).not.toContain('docker.io/library/failing:1');
    // only the successful first RUN's layer may have been added
    const after = (await fsp.readdir(path.join(root, 'oci', 'blobs', 'sha256'))).length;
    expect(after - before).toBeLessThanOrEqual(1);
    const tmp = await fsp.readdir(path.join(root, 'oci', 'tmp')).catch(() => []);
    expect(tmp).toEqual([]);
  });
});
