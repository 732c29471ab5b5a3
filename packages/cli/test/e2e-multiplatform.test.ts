/**
 * Issue 11 on the real parts: an arm64 busybox made offline from Debian's busybox-static:arm64
 * and served with the amd64 one as a multi-platform OCI index by the test registry; a build for
 * linux/arm64 runs its RUN steps under QEMU with no binfmt_misc handler on the host (the test
 * hides /proc/sys/fs/binfmt_misc in its own mount namespace), a $BUILDPLATFORM stage natively.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { HOIST_BIN, pushMultiPlatformBusybox, run, startRegistry, storeWithBusybox, tempDir, type RunningRegistry } from '@hoist/testkit';

/** `hoist ARGS` in a mount namespace of its own where `hide` are empty tmpfs mounts. */
function hoistHiding(hide: string[], args: string[]): ReturnType<typeof run> {
  const mounts = hide.map((d) => `mount -t tmpfs -o size=1m hoist-hidden '${d}' && `).join('');
  const quoted = args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', `${mounts}exec '${process.execPath}' '${HOIST_BIN}' ${quoted}`], { env: { ...process.env, NO_COLOR: '1' }, timeoutMs: 300_000 });
}

/** The ELF machine of a file (0xb7 aarch64, 0x3e x86-64). */
async function elfMachine(file: string): Promise<number> {
  const h = await fsp.readFile(file);
  expect(h.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
  return h.readUInt16LE(18);
}

describe('multi-platform: foreign RUN under QEMU with no host setup', () => {
  let registry: RunningRegistry;
  let seed: string;
  let work: string;
  let base: string;

  beforeAll(async () => {
    [registry, seed, work] = await Promise.all([startRegistry(), storeWithBusybox(), tempDir('multiplatform')]);
    base = await pushMultiPlatformBusybox(seed, registry.host);
  }, 600_000);

  afterAll(async () => {
    await registry?.stop();
    for (const d of [seed, work]) if (d) await fsp.rm(d, { recursive: true, force: true });
  });

  async function context(name: string, dockerfile: string): Promise<string> {
    const dir = path.join(work, name);
    await fsp.mkdir(dir, { recursive: true });
    await fsp.writeFile(path.join(dir, 'Dockerfile'), dockerfile);
    return dir;
  }

  it('the registry serves busybox as an OCI index with amd64 and arm64', async () => {
    const r = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${base}`]);
    const idx = JSON.parse(r.stdout) as { mediaType: string; manifests: Array<{ platform: { architecture: string } }> };
    expect(idx.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(idx.manifests.map((m) => m.platform.architecture)).toEqual(['amd64', 'arm64']);
  });

  it('--platform linux/arm64: RUN (also sh -c with a pipe) runs as aarch64, the $BUILDPLATFORM stage as x86_64, the config says arm64', async () => {
    const ctx = await context('arm64', [
      `FROM --platform=$BUILDPLATFORM ${base} AS tools`,
      'ARG TARGETARCH',
      'RUN echo "$TARGETARCH" > /for && uname -m > /build-arch',
      `FROM ${base}`,
      'COPY --from=tools /for /build-arch /',
      "RUN uname -m > /arch && sh -c 'uname -m | tr a-z A-Z > /arch-upper' && ls /bin | grep -c . > /count",
      'RUN ["uname", "-m"]',
      'USER app',
      "RUN id -u > /home/app/uid && uname -m > /home/app/arch && grep '^CapEff' /proc/self/status > /home/app/caps",
      '',
    ].join('\n'));
    const root = path.join(work, 'store-arm64');
    const out = path.join(work, 'out-arm64');
    const r = await hoistHiding(['/proc/sys/fs/binfmt_misc'], ['build', '--root', root, '--progress', 'plain', '--platform', 'linux/arm64', '-t', 'mp:arm64', '--output', `type=local,dest=${out}`, ctx]);
    expect(r.stderr).toContain('DONE');
    expect(r.code).toBe(0);
    const read = (f: string): Promise<string> => fsp.readFile(path.join(out, f), 'utf8');
    expect(await read('arch')).toBe('aarch64\n');
    expect(await read('arch-upper')).toBe('AARCH64\n');
    // `ls | grep -c`: a pipe of two emulated processes saw the same /bin as the exported result
    expect(Number(await read('count'))).toBe((await fsp.readdir(path.join(out, 'bin'))).length);
    expect(await read('build-arch')).toBe('x86_64\n');
    expect(await read('for')).toBe('arm64\n');
    expect(r.stderr).toMatch(/RUN \["uname", "-m"\]\n#\d+ aarch64\n/);
    expect(await elfMachine(path.join(out, 'bin', 'busybox'))).toBe(0xb7);
    const inspect = await run(process.execPath, [HOIST_BIN, 'inspect', '--root', root, 'mp:arm64']);
    expect((JSON.parse(inspect.stdout) as { config: { architecture: string; os: string } }).config).toMatchObject({ architecture: 'arm64', os: 'linux' });
    // a non-root step is emulated too, and keeps no capability (as a non-root RUN in Docker)
    expect(await read('home/app/uid')).toBe('1000\n');
    expect(await read('home/app/arch')).toBe('aarch64\n');
    expect(await read('home/app/caps')).toBe('CapEff:\t0000000000000000\n');
    // nothing of the emulation reaches the image
    expect(await fsp.readdir(path.join(out, 'dev'))).toEqual([]);
  });

  it('--platform linux/amd64,linux/arm64: an index (pushed, type=oci), one folder per platform (type=local), the $BUILDPLATFORM stage ran once', async () => {
    const ctx = await context('multi', [
      `FROM --platform=$BUILDPLATFORM ${base} AS tools`,
      'RUN uname -m > /build-arch && cat /proc/sys/kernel/random/uuid > /stamp',
      `FROM ${base}`,
      'ARG TARGETPLATFORM',
      'COPY --from=tools /build-arch /stamp /',
      'RUN uname -m > /arch && echo "$TARGETPLATFORM" > /target',
      '',
    ].join('\n'));
    const root = path.join(work, 'store-multi');
    const out = path.join(work, 'out-multi');
    const layout = path.join(work, 'multi.oci');
    const ref = `${registry.host}/x/mp:1`;
    const r = await hoistHiding(['/proc/sys/fs/binfmt_misc'], ['build', '--root', root, '--progress', 'plain', '--platform', 'linux/amd64,linux/arm64', '-t', ref, '--push', '-o', `type=local,dest=${out}`, '-o', `type=oci,dest=${layout}`, ctx]);
    expect(r.stderr).toContain(`pushed ${ref}`);
    expect(r.code).toBe(0);
    const raw = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]);
    const idx = JSON.parse(raw.stdout) as { mediaType: string; manifests: Array<{ digest: string; platform: { os: string; architecture: string } }> };
    expect(idx.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    // each image and (buildx's default provenance) its attestation manifest
    expect(idx.manifests.map((m) => `${m.platform.os}/${m.platform.architecture}`)).toEqual(['linux/amd64', 'linux/arm64', 'unknown/unknown', 'unknown/unknown']);
    for (const m of idx.manifests) {
      const cfg = await run('skopeo', ['inspect', '--config', '--raw', '--tls-verify=false', `docker://${registry.host}/x/mp@${m.digest}`]);
      expect((JSON.parse(cfg.stdout) as { architecture: string }).architecture).toBe(m.platform.architecture);
    }
    const read = (p: string, f: string): Promise<string> => fsp.readFile(path.join(out, p, f), 'utf8');
    expect(await read('linux_amd64', 'arch')).toBe('x86_64\n');
    expect(await read('linux_arm64', 'arch')).toBe('aarch64\n');
    expect(await read('linux_amd64', 'target')).toBe('linux/amd64\n');
    expect(await read('linux_arm64', 'target')).toBe('linux/arm64\n');
    expect(await read('linux_arm64', 'build-arch')).toBe('x86_64\n');
    // one run of the $BUILDPLATFORM stage: both platforms have its one random stamp, the second build a cache hit
    expect(await read('linux_arm64', 'stamp')).toBe(await read('linux_amd64', 'stamp'));
    const second = r.stderr.slice(r.stderr.indexOf('platform linux/arm64'));
    const toolsId = /^#(\d+) \[tools 1\/1\]/m.exec(second)![1];
    expect(second).toMatch(new RegExp(`^#${toolsId} CACHED$`, 'm'));
    expect(r.stderr.match(/^#\d+ \[tools 1\/1\]/gm)).toHaveLength(2);
    // the OCI layout holds the same index
    const top = JSON.parse(await fsp.readFile(path.join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ mediaType: string; digest: string }> };
    expect(top.manifests.map((m) => m.mediaType)).toEqual(['application/vnd.oci.image.index.v1+json']);
    const inner = await fsp.readFile(path.join(layout, 'blobs', 'sha256', top.manifests[0]!.digest.slice(7)), 'utf8');
    expect(inner).toBe(raw.stdout);
    const images = await run(process.execPath, [HOIST_BIN, 'images', '--root', root, '--json']);
    const listed = (JSON.parse(images.stdout) as Array<{ ref: string; platforms: string[] }>).find((i) => i.ref === ref);
    expect(listed?.platforms).toEqual(['linux/amd64', 'linux/arm64']);
    // hoist run --platform picks a manifest of the index (emulated when foreign); the host's by default
    const arm = await hoistHiding(['/proc/sys/fs/binfmt_misc'], ['run', '--root', root, '--network', 'none', '--platform', 'linux/arm64', ref, 'cat', '/arch']);
    expect(arm.stdout).toBe('aarch64\n');
    const host = await hoistHiding(['/proc/sys/fs/binfmt_misc'], ['run', '--root', root, '--network', 'none', ref, 'uname', '-m']);
    expect(host.stdout).toBe('x86_64\n');
    const armUname = await hoistHiding(['/proc/sys/fs/binfmt_misc'], ['run', '--root', root, '--network', 'none', '--platform', 'linux/arm64', ref, 'uname', '-m']);
    expect(armUname.stdout).toBe('aarch64\n');
  });

  it('COPY --from=<image> and RUN --mount from=<image> resolve the image for their stage: the build platform in a $BUILDPLATFORM stage', async () => {
    const ctx = await context('copy-from-image', [
      `FROM --platform=$BUILDPLATFORM ${base} AS tools`,
      `COPY --from=${base} /bin/busybox /tools-busybox`,
      `RUN --mount=type=bind,from=${base},target=/m cp /m/bin/busybox /mounted-busybox`,
      `FROM ${base}`,
      'COPY --from=tools /tools-busybox /mounted-busybox /',
      `COPY --from=${base} /bin/busybox /target-busybox`,
      '',
    ].join('\n'));
    const out = path.join(work, 'out-copy-from-image');
    const r = await hoistHiding(['/proc/sys/fs/binfmt_misc'], ['build', '--root', path.join(work, 'store-copy-from-image'), '--progress', 'plain', '--platform', 'linux/arm64', '-o', `type=local,dest=${out}`, ctx]);
    expect(r.stderr).toContain('DONE');
    expect(r.code).toBe(0);
    expect(await elfMachine(path.join(out, 'tools-busybox'))).toBe(0x3e);
    expect(await elfMachine(path.join(out, 'mounted-busybox'))).toBe(0x3e);
    expect(await elfMachine(path.join(out, 'target-busybox'))).toBe(0xb7);
    expect(await elfMachine(path.join(out, 'bin', 'busybox'))).toBe(0xb7);
  });

  it('one runner per platform, pushed by digest, then hoist manifest create merges them into an index', async () => {
    const ctx = await context('merge', `FROM ${base}\nRUN uname -m > /arch\n`);
    const repo = `${registry.host}/x/merged`;
    const pushed: string[] = [];
    const digests: string[] = [];
    for (const arch of ['amd64', 'arm64']) {
      const r = await hoistHiding(['/proc/sys/fs/binfmt_misc'], ['build', '--root', path.join(work, `runner-${arch}`), '--progress', 'plain', '--platform', `linux/${arch}`, '-t', `${repo}:${arch}`, '--push', ctx]);
      expect(r.code).toBe(0);
      // each runner pushed an index of its image and the image's attestation manifest (buildx's default provenance)
      pushed.push(r.stdout.trim());
      const one = JSON.parse((await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${repo}@${r.stdout.trim()}`])).stdout) as { manifests: Array<{ digest: string; platform: { architecture: string } }> };
      expect(one.manifests.map((x) => x.platform.architecture)).toEqual([arch, 'unknown']);
      digests.push(one.manifests[0]!.digest);
    }
    // the merged index takes the images and leaves the attestation manifests out
    const m = await run(process.execPath, [HOIST_BIN, 'manifest', 'create', '-t', `${repo}:1`, ...pushed.map((d) => `${repo}@${d}`)]);
    expect(m.stderr).toContain(`pushed index ${repo}:1 (2 manifests)`);
    expect(m.code).toBe(0);
    const raw = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${repo}:1`]);
    const idx = JSON.parse(raw.stdout) as { mediaType: string; manifests: Array<{ digest: string; platform: { architecture: string } }> };
    expect(idx.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(idx.manifests.map((x) => [x.digest, x.platform.architecture])).toEqual([[digests[0], 'amd64'], [digests[1], 'arm64']]);
    expect(m.stdout.trim()).toMatch(/^sha256:[0-9a-f]{64}$/);
    const other = await run(process.execPath, [HOIST_BIN, 'manifest', 'create', '-t', `${registry.host}/x/elsewhere:1`, `${repo}@${digests[0]}`]);
    expect(other.code).toBe(2);
    expect(other.stderr).toContain('sources must be in');
  });

  it('--platform linux/s390x without an emulator: exit 1 before building, naming the platform and the fix', async () => {
    const ctx = await context('s390x', 'FROM scratch\nCOPY Dockerfile /\nRUN echo never\n');
    const root = path.join(work, 'store-s390x');
    const r = await hoistHiding(['/proc/sys/fs/binfmt_misc', '/usr/lib/binfmt.d'], ['build', '--root', root, '--progress', 'plain', '--platform', 'linux/s390x', '-t', 'mp:s390x', ctx]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot build for linux/s390x');
    expect(r.stderr).toContain('apt-get install qemu-user-static');
    expect(r.stderr).not.toMatch(/^#\d+ \[/m); // no step started
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    const images = await run(process.execPath, [HOIST_BIN, 'images', '--root', root]);
    expect(images.stdout).not.toContain('s390x');
  });

  it('several platforms with type=docker or --load: refused before building with buildx\'s message', async () => {
    const ctx = await context('docker-out', 'FROM scratch\nCOPY Dockerfile /\n');
    const r = await run(process.execPath, [HOIST_BIN, 'build', '--root', path.join(work, 'store-docker'), '--platform', 'linux/amd64,linux/arm64', '-o', `type=docker,dest=${path.join(work, 'x.tar')}`, ctx]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--output type=docker: docker exporter does not currently support exporting manifest lists (a build for 2 platforms makes an index)');
    const load = await run(process.execPath, [HOIST_BIN, 'build', '--root', path.join(work, 'store-docker'), '--platform', 'linux/amd64,linux/arm64', '--load', ctx]);
    expect(load.code).toBe(2);
    expect(load.stderr).toContain('--load: docker exporter does not currently support exporting manifest lists');
    expect(load.stderr).not.toMatch(/\n\s+at /);
  });

  it('--iidfile, --metadata-file and -q of a multi-platform build hold the index (its digest and descriptor), as buildx writes them', async () => {
    const ctx = await context('result-files', `FROM ${base}\nCOPY Dockerfile /\n`);
    const ref = `${registry.host}/x/files:1`;
    const iid = path.join(work, 'index.iid');
    const meta = path.join(work, 'index.meta.json');
    const r = await run(process.execPath, [HOIST_BIN, 'build', '--root', path.join(work, 'store-files'), '-q', '--platform', 'linux/amd64,linux/arm64', '-t', ref, '--push', '--iidfile', iid, '--metadata-file', meta, ctx]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const raw = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]);
    const digest = `sha256:${createHash('sha256').update(raw.stdout).digest('hex')}`;
    // the pushed index: both images and, as buildx pushes by default, their provenance manifests
    const listed = (JSON.parse(raw.stdout) as { manifests: Array<{ platform: { os: string; architecture: string } }> }).manifests;
    expect(listed.map((d) => `${d.platform.os}/${d.platform.architecture}`)).toEqual(['linux/amd64', 'linux/arm64', 'unknown/unknown', 'unknown/unknown']);
    expect(r.stdout).toBe(`${digest}\n`);
    expect(await fsp.readFile(iid, 'utf8')).toBe(digest);
    const m = JSON.parse(await fsp.readFile(meta, 'utf8')) as Record<string, unknown>;
    expect(m['containerimage.digest']).toBe(digest);
    expect(m['containerimage.descriptor']).toEqual({ mediaType: 'application/vnd.oci.image.index.v1+json', digest, size: Buffer.byteLength(raw.stdout), annotations: { 'org.opencontainers.image.created': expect.stringMatching(/^\d{4}-\d\d-\d\dT/) } });
    expect(m).not.toHaveProperty('containerimage.config.digest');
    expect(m['image.name']).toBe(ref);
    expect(m['buildx.build.ref']).toMatch(/^hoist\/hoist0\/[0-9a-z]{25}$/);
  });

  it('an unknown architecture: exit 1 before building', async () => {
    const ctx = await context('vax', 'FROM scratch\nRUN echo never\n');
    const r = await run(process.execPath, [HOIST_BIN, 'build', '--root', path.join(work, 'store-vax'), '--progress', 'plain', '--platform', 'linux/vax', ctx]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot build for linux/vax: unknown architecture "vax"');
  });
});
