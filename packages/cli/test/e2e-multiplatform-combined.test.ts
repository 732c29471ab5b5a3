/**
 * Issue 11's "What it must show", in one build: one Dockerfile with `RUN apt-get install`,
 * `RUN uname -m > /arch` and a cross-compile stage on `$BUILDPLATFORM`, built for
 * linux/amd64,linux/arm64 by one `hoist build --push` from a Debian index (amd64 from
 * debootstrap, arm64 made offline: debootstrap --foreign + an emulated second stage), with no
 * binfmt_misc handler (the test hides /proc/sys/fs/binfmt_misc in its own mount namespace).
 * The packages are Debian .debs fetched once by apt-get download and installed offline
 * (`apt-get install ./x.deb`: apt, dpkg and the maintainer scripts run emulated on arm64).
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { debianPackage, HOIST_BIN, pushMultiPlatformDebian, run, startRegistry, tempDir, type RunningRegistry } from '@hoist/testkit';

/** `hoist ARGS` in a mount namespace of its own where /proc/sys/fs/binfmt_misc is an empty tmpfs. */
function hoistWithoutBinfmt(args: string[]): ReturnType<typeof run> {
  const quoted = args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const script = `mount -t tmpfs -o size=1m hoist-hidden /proc/sys/fs/binfmt_misc && exec '${process.execPath}' '${HOIST_BIN}' ${quoted}`;
  return run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { env: { ...process.env, NO_COLOR: '1' }, timeoutMs: 1_200_000 });
}

/** What file(1) says about a file (its description, without the name). */
async function fileType(file: string): Promise<string> {
  const r = await run('file', ['-b', file]);
  expect(r.code).toBe(0);
  return r.stdout.trim();
}

/** How a step with this label ended in plain progress, each time it appeared: `DONE` or `CACHED`. */
function outcomes(stderr: string, label: string): string[] {
  const ids = [...stderr.matchAll(/^#(\d+) (.*)$/gm)].filter((m) => m[2]!.startsWith(label)).map((m) => m[1]!);
  const out: string[] = [];
  for (const line of stderr.split('\n')) {
    const m = /^#(\d+) (DONE|CACHED)\b/.exec(line);
    if (m && ids.includes(m[1]!)) out.push(m[2]!);
  }
  return out;
}

const DOCKERFILE = (base: string): string => [
  // the cross-compile stage: runs natively, once for every target (no TARGET* in its steps),
  // and makes each target architecture's binary (here: unpacked from Debian's busybox-static)
  `FROM --platform=$BUILDPLATFORM ${base} AS build`,
  'COPY debs/busybox-static_amd64.deb debs/busybox-static_arm64.deb /debs/',
  'RUN for a in amd64 arm64; do mkdir -p /x/$a /out/$a && dpkg-deb -x /debs/busybox-static_$a.deb /x/$a && cp /x/$a/bin/busybox /out/$a/; done && uname -m > /out/build-arch && cat /proc/sys/kernel/random/uuid > /out/stamp',
  `FROM ${base}`,
  'ARG TARGETARCH',
  'COPY debs/hello_${TARGETARCH}.deb /tmp/hello.deb',
  'RUN apt-get install -y /tmp/hello.deb && rm /tmp/hello.deb',
  'RUN uname -m > /arch && hello > /hello-says && dpkg --print-architecture > /dpkg-arch',
  'COPY --from=build /out/${TARGETARCH}/busybox /usr/local/bin/busybox',
  'COPY --from=build /out/build-arch /out/stamp /',
  '',
].join('\n');

describe('multi-platform: apt-get install, uname -m and a $BUILDPLATFORM cross stage in one linux/amd64,linux/arm64 build', () => {
  let registry: RunningRegistry;
  let work: string;
  let base: string;
  let ctx: string;

  beforeAll(async () => {
    [registry, work] = await Promise.all([startRegistry(), tempDir('mp-combined')]);
    base = await pushMultiPlatformDebian(registry.host);
    ctx = path.join(work, 'ctx');
    await fsp.mkdir(path.join(ctx, 'debs'), { recursive: true });
    for (const pkg of ['hello', 'busybox-static']) {
      for (const arch of ['amd64', 'arm64']) await fsp.copyFile(await debianPackage(pkg, arch), path.join(ctx, 'debs', `${pkg}_${arch}.deb`));
    }
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), DOCKERFILE(base));
  }, 1_800_000);

  afterAll(async () => {
    await registry?.stop();
    if (work) await fsp.rm(work, { recursive: true, force: true });
  });

  it('with no binfmt_misc handler: one index, /arch x86_64 and aarch64, aarch64 ELF binaries, arm64 config, the $BUILDPLATFORM stage run once', async () => {
    const ref = `${registry.host}/x/combined:1`;
    const out = path.join(work, 'out');
    const r = await hoistWithoutBinfmt(['build', '--root', path.join(work, 'store'), '--progress', 'plain', '--network', 'none', '--platform', 'linux/amd64,linux/arm64', '-t', ref, '--push', '-o', `type=local,dest=${out}`, ctx]);
    expect(r.stderr).toContain(`pushed ${ref}`);
    expect(r.code).toBe(0);
    // dpkg set the package up in both builds (on arm64: apt, dpkg and its scripts emulated)
    expect(r.stderr.match(/Setting up hello \(/g)).toHaveLength(2);

    // the registry holds an index of the two platforms (and, as buildx pushes by default, their
    // provenance manifests), each image's config saying its architecture
    const raw = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]);
    const idx = JSON.parse(raw.stdout) as { mediaType: string; manifests: Array<{ digest: string; platform: { os: string; architecture: string } }> };
    expect(idx.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(idx.manifests.map((m) => `${m.platform.os}/${m.platform.architecture}`)).toEqual(['linux/amd64', 'linux/arm64', 'unknown/unknown', 'unknown/unknown']);
    for (const m of idx.manifests.filter((d) => d.platform.os === 'linux')) {
      const cfg = await run('skopeo', ['inspect', '--config', '--raw', '--tls-verify=false', `docker://${registry.host}/x/combined@${m.digest}`]);
      expect(JSON.parse(cfg.stdout)).toMatchObject({ os: 'linux', architecture: m.platform.architecture });
    }

    const read = (p: string, f: string): Promise<string> => fsp.readFile(path.join(out, p, f), 'utf8');
    expect(await read('linux_amd64', 'arch')).toBe('x86_64\n');
    expect(await read('linux_arm64', 'arch')).toBe('aarch64\n');
    expect(await read('linux_amd64', 'dpkg-arch')).toBe('amd64\n');
    expect(await read('linux_arm64', 'dpkg-arch')).toBe('arm64\n');
    // the installed program ran in its own platform's build
    expect(await read('linux_arm64', 'hello-says')).toBe('Hello, world!\n');
    expect(await read('linux_amd64', 'hello-says')).toBe('Hello, world!\n');

    // each platform's binaries are for its architecture: apt's, the package's and the cross stage's
    for (const f of ['usr/bin/hello', 'usr/bin/apt', 'usr/local/bin/busybox']) {
      expect(await fileType(path.join(out, 'linux_arm64', f))).toMatch(/^ELF 64-bit LSB .*ARM aarch64/);
      expect(await fileType(path.join(out, 'linux_amd64', f))).toMatch(/^ELF 64-bit LSB .*x86-64/);
    }

    // the cross stage ran natively, once: one stamp in both images, its RUN done once and cached once
    expect(await read('linux_arm64', 'build-arch')).toBe('x86_64\n');
    expect(await read('linux_arm64', 'stamp')).toBe(await read('linux_amd64', 'stamp'));
    expect(outcomes(r.stderr, '[build 2/2] RUN')).toEqual(['DONE', 'CACHED']);
    // the target stage's RUN ran once for each platform
    expect(outcomes(r.stderr, '[stage-1 3/5] RUN uname')).toEqual(['DONE', 'DONE']);
  }, 1_200_000);
});
