/**
 * Target platforms (issue 11): a platform that cannot run fails before any step; the platform
 * build args; foreign RUN steps get a private binfmt_misc emulation, FROM --platform=$BUILDPLATFORM
 * stages none. Fake executor and a fake host (emulators, binfmt_misc); real store below.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { ImageStore, type Platform } from '@hoist/oci';
import { Snapshotter } from '@hoist/snapshotter';
import { tempDir } from '@hoist/testkit';
import { build, buildPlatforms, BuildError, emulatedSpec, emulationFor, generateSpec, registration, type BuildResult, type EmulationHost } from '@hoist/builder';
import { FakeExecutor, FakeImageSource, MemoryCacheStore } from '../src/testing/index.js';

// Debian's /usr/lib/binfmt.d/qemu-aarch64.conf (qemu-user-static 1:7.2), a fact we read at run time
const AARCH64_CONF =
  ':qemu-aarch64:M::\\x7f\\x45\\x4c\\x46\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00:\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff:/usr/libexec/qemu-binfmt/aarch64-binfmt-P:OPF\n';

let root: string;
let n = 0;
const amd64: Platform = { os: 'linux', architecture: 'amd64' };

beforeAll(async () => {
  root = await tempDir('platforms');
});

afterAll(async () => {
  if (root) await fsp.rm(root, { recursive: true, force: true });
});

/** A fake amd64 host: `emulators` lists the qemu-<arch>-static files and binfmt.d entries it has. */
async function fakeHost(emulators: string[], handlers: Record<string, string> = {}): Promise<EmulationHost> {
  const dir = path.join(root, `host-${++n}`);
  for (const d of ['bin', 'binfmt.d', 'binfmt_misc']) await fsp.mkdir(path.join(dir, d), { recursive: true });
  for (const q of emulators) {
    await fsp.writeFile(path.join(dir, 'bin', `qemu-${q}-static`), '');
    await fsp.writeFile(path.join(dir, 'binfmt.d', `qemu-${q}.conf`), q === 'aarch64' ? AARCH64_CONF : `:qemu-${q}:M::\\x7fELF:\\xff\\xff\\xff\\xff:/usr/libexec/qemu-binfmt/${q}-binfmt-P:OPF\n`);
  }
  for (const [name, text] of Object.entries(handlers)) await fsp.writeFile(path.join(dir, 'binfmt_misc', name), text);
  return { platform: amd64, emulatorDirs: [path.join(dir, 'bin')], binfmtDir: path.join(dir, 'binfmt_misc'), binfmtConfDir: path.join(dir, 'binfmt.d'), helper: '/bin/sh', kernelRelease: '6.18.44' };
}

async function options(dockerfile: string, o: { host: EmulationHost; executor: FakeExecutor }): Promise<Omit<Parameters<typeof build>[0], 'platform'>> {
  const dir = path.join(root, `b-${++n}`);
  const store = await ImageStore.open(path.join(dir, 'oci'));
  const snapshotter = await Snapshotter.open({ root: path.join(dir, 'snapshots'), blobs: store.blobs });
  await fsp.mkdir(path.join(dir, 'ctx'), { recursive: true });
  return {
    store,
    snapshotter,
    images: new FakeImageSource(store),
    executor: o.executor,
    cache: new MemoryCacheStore(),
    root: dir,
    contextDir: path.join(dir, 'ctx'),
    dockerfile: { path: 'Dockerfile', text: dockerfile },
    emulationHost: o.host,
    network: 'none',
    sourceDateEpoch: 0,
  };
}

async function buildWith(dockerfile: string, o: { platform: Platform; host: EmulationHost; executor: FakeExecutor }): Promise<BuildResult> {
  return build({ ...(await options(dockerfile, o)), platform: o.platform });
}

describe('target platforms', () => {
  it('--platform linux/s390x without an emulator fails before any step runs, naming the platform and the fix', async () => {
    const ex = new FakeExecutor();
    const err = (await buildWith('FROM scratch\nCOPY --from=scratch / /\nRUN echo hi\n', { platform: { os: 'linux', architecture: 's390x' }, host: await fakeHost(['aarch64']), executor: ex }).catch((e: unknown) => e)) as BuildError;
    expect(err).toBeInstanceOf(BuildError);
    expect(err.code).toBe('PLATFORM_UNSUPPORTED');
    expect(err.message).toContain('cannot build for linux/s390x');
    expect(err.message).toContain('apt-get install qemu-user-static');
    expect(err.location?.line).toBe(3);
    expect(ex.events).toEqual([]);
  });

  it('an unknown architecture fails before any step runs', async () => {
    const ex = new FakeExecutor();
    const err = (await buildWith('FROM scratch\nRUN echo hi\n', { platform: { os: 'linux', architecture: 'vax' }, host: await fakeHost([]), executor: ex }).catch((e: unknown) => e)) as BuildError;
    expect(err.code).toBe('PLATFORM_UNSUPPORTED');
    expect(err.message).toContain('unknown architecture "vax"');
    expect(ex.events).toEqual([]);
  });

  it('a platform without RUN steps needs no emulator (files only, as buildx)', async () => {
    const r = await buildWith('FROM scratch\nENV A=1\n', { platform: { os: 'linux', architecture: 's390x' }, host: await fakeHost([]), executor: new FakeExecutor() });
    expect(r.config.architecture).toBe('s390x');
  });

  it('sets TARGET* for the target and BUILD* for the host; the RUN is emulated, the $BUILDPLATFORM stage is not', async () => {
    const ex = new FakeExecutor();
    const df = [
      'FROM --platform=$BUILDPLATFORM scratch AS tools',
      'ARG TARGETARCH',
      'RUN echo tools',
      'FROM scratch',
      'ARG TARGETPLATFORM',
      'ARG TARGETOS',
      'ARG TARGETARCH',
      'ARG TARGETVARIANT',
      'ARG BUILDPLATFORM',
      'ARG BUILDARCH',
      'COPY --from=tools /ran /tools',
      'RUN echo target',
      '',
    ].join('\n');
    const r = await buildWith(df, { platform: { os: 'linux', architecture: 'arm64', variant: 'v8' }, host: await fakeHost(['aarch64']), executor: ex });
    expect(ex.commands).toEqual(['echo tools', 'echo target']);
    const [tools, target] = ex.processes;
    expect(tools!.env).toContain('TARGETARCH=arm64');
    // as BuildKit normalises it (containerd's Normalize): arm64's v8 is the default and dropped
    expect(target!.env).toEqual(expect.arrayContaining(['TARGETPLATFORM=linux/arm64', 'TARGETOS=linux', 'TARGETARCH=arm64', 'TARGETVARIANT=', 'BUILDPLATFORM=linux/amd64', 'BUILDARCH=amd64']));
    expect(ex.emulations[0]).toBeUndefined();
    expect(ex.emulations[1]).toMatchObject({ target: '/dev/.hoist/aarch64-binfmt-P', register: expect.stringMatching(/^:hoist-aarch64:M::\\x7f\\x45\\x4c\\x46/) });
    expect(r.config).toMatchObject({ architecture: 'arm64', variant: 'v8', os: 'linux' });
  });

  it('linux/arm/v7: TARGETVARIANT=v7, emulated by qemu-arm', async () => {
    const ex = new FakeExecutor();
    await buildWith('FROM scratch\nARG TARGETPLATFORM\nARG TARGETVARIANT\nRUN echo v7\n', { platform: { os: 'linux', architecture: 'arm', variant: 'v7' }, host: await fakeHost(['arm']), executor: ex });
    expect(ex.processes[0]!.env).toEqual(expect.arrayContaining(['TARGETPLATFORM=linux/arm/v7', 'TARGETVARIANT=v7']));
    expect(ex.emulations[0]).toMatchObject({ target: '/dev/.hoist/arm-binfmt-P' });
  });
});

describe('several platforms', () => {
  it('linux/amd64,linux/s390x without an s390x emulator builds nothing, not even amd64', async () => {
    const ex = new FakeExecutor();
    const opts = await options('FROM scratch\nRUN echo hi\n', { host: await fakeHost(['aarch64']), executor: ex });
    const err = (await buildPlatforms(opts, [amd64, { os: 'linux', architecture: 's390x' }]).catch((e: unknown) => e)) as BuildError;
    expect(err.code).toBe('PLATFORM_UNSUPPORTED');
    expect(err.message).toContain('linux/s390x');
    expect(ex.events).toEqual([]);
  });

  it('linux/amd64,linux/arm64: an index with each platform\'s manifest, tagged; the $BUILDPLATFORM RUN runs once', async () => {
    const ex = new FakeExecutor();
    const df = 'FROM --platform=$BUILDPLATFORM scratch AS tools\nRUN echo tools\nFROM scratch\nARG TARGETARCH\nCOPY --from=tools /ran /tools\nRUN echo $TARGETARCH\n';
    const opts = await options(df, { host: await fakeHost(['aarch64']), executor: ex });
    const r = await buildPlatforms({ ...opts, tags: ['mp:1'] }, [amd64, { os: 'linux', architecture: 'arm64' }]);
    expect(ex.commands).toEqual(['echo tools', 'echo $TARGETARCH', 'echo $TARGETARCH']);
    expect(ex.processes.slice(1).map((p) => p.env.find((e) => e.startsWith('TARGETARCH=')))).toEqual(['TARGETARCH=amd64', 'TARGETARCH=arm64']);
    const index = JSON.parse((await opts.store.blobs.getBytes(r.descriptor)).toString()) as { mediaType: string; manifests: Array<{ digest: string; platform: Platform }> };
    expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(index.manifests.map((m) => m.platform)).toEqual([amd64, { os: 'linux', architecture: 'arm64' }]);
    expect(index.manifests.map((m) => m.digest)).toEqual(r.platforms.map((p) => p.result.descriptor.digest));
    expect(r.tags).toEqual(['docker.io/library/mp:1']);
    expect((await opts.store.resolve('docker.io/library/mp:1'))?.digest).toBe(r.descriptor.digest);
  });
});

describe('emulation', () => {
  it('uses the host\'s handler when one with the F flag is enabled, else a private one', async () => {
    const arm: Platform = { os: 'linux', architecture: 'arm64' };
    const withF = await fakeHost(['aarch64'], { 'qemu-aarch64': 'enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: OPF\noffset 0\n' });
    expect(emulationFor(arm, withF)).toEqual({ kind: 'host-binfmt', entry: path.join(withF.binfmtDir, 'qemu-aarch64') });
    const withoutF = await fakeHost(['aarch64'], { 'qemu-aarch64': 'enabled\ninterpreter /usr/bin/qemu-aarch64\nflags: P\n' });
    expect(emulationFor(arm, withoutF).kind).toBe('private-binfmt');
    expect(emulationFor(amd64, withoutF)).toEqual({ kind: 'native' });
    expect(emulationFor({ os: 'linux', architecture: '386' }, withoutF)).toEqual({ kind: 'native' });
  });

  it('an old kernel (no binfmt_misc per user namespace) and no host handler: a clear error', async () => {
    const host = { ...(await fakeHost(['aarch64'])), kernelRelease: '6.1.0-18-amd64' };
    expect(() => emulationFor({ os: 'linux', architecture: 'arm64' }, host)).toThrow(/kernel \(6\.1\.0-18-amd64\) is older than 6\.7/);
  });

  it('registers Debian\'s magic and mask for our emulator path, with F (and Debian\'s O and P)', () => {
    expect(registration(AARCH64_CONF, 'aarch64')).toBe(
      ':hoist-aarch64:M::\\x7f\\x45\\x4c\\x46\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00:\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff:/dev/.hoist/aarch64-binfmt-P:OPF',
    );
    expect(registration(':qemu-x:M:0:\\x7fELF:\\xff:/usr/bin/qemu-x:C\n', 'x')).toBe(':hoist-x:M:0:\\x7fELF:\\xff:/dev/.hoist/x-binfmt-P:F');
  });

  it('the sandbox gets its own identity-mapped user namespace, a binfmt_misc instance and a registering shell', () => {
    const base = generateSpec({ rootfs: '/r', hostname: 'h', network: { netns: '/run/netns/x' }, hostsFile: '/h', resolvConf: '/rc', process: { args: ['/bin/sh', '-c', 'uname -m'], env: [], cwd: '/', uid: 0, gid: 0 } });
    const emu = { emulator: '/usr/bin/qemu-aarch64-static', target: '/dev/.hoist/aarch64-binfmt-P', register: ':hoist-aarch64:M::x:y:/dev/.hoist/aarch64-binfmt-P:F', helper: '/bin/busybox' };
    const spec = emulatedSpec(base, emu, '0 0 4294967295\n', '0 0 4294967295\n') as { process: { args: string[] }; mounts: Array<{ destination: string; type: string; source: string }>; linux: { namespaces: Array<{ type: string }>; uidMappings: unknown[]; gidMappings: unknown[] } };
    expect(spec.linux.namespaces.map((x) => x.type)).toContain('user');
    expect(spec.linux.uidMappings).toEqual([{ containerID: 0, hostID: 0, size: 4294967295 }]);
    expect(spec.linux.gidMappings).toEqual([{ containerID: 0, hostID: 0, size: 4294967295 }]);
    const byDest = new Map(spec.mounts.map((m) => [m.destination, m]));
    expect(byDest.get('/sys')).toMatchObject({ type: 'bind', source: '/sys' });
    expect(byDest.get('/dev/.hoist/binfmt')).toMatchObject({ type: 'binfmt_misc' });
    expect(byDest.get('/dev/.hoist/aarch64-binfmt-P')).toMatchObject({ type: 'bind', source: '/usr/bin/qemu-aarch64-static' });
    expect(byDest.get('/dev/.hoist/busybox')).toMatchObject({ type: 'bind', source: '/bin/busybox' });
    expect(spec.process.args.slice(0, 3)).toEqual(['/dev/.hoist/busybox', 'sh', '-c']);
    expect(spec.process.args.slice(4)).toEqual(['hoist-emulation', emu.register, '0', '/bin/sh', '-c', 'uname -m']);
  });

  it('a non-root step gets CAP_DAC_OVERRIDE only as an ambient capability for the registering shell, which drops it', () => {
    const base = generateSpec({ rootfs: '/r', hostname: 'h', network: 'none', hostsFile: '/h', resolvConf: '/rc', process: { args: ['true'], env: [], cwd: '/', uid: 1000, gid: 1000 } });
    const spec = emulatedSpec(base, { emulator: '/q', target: '/dev/.hoist/q', register: 'r', helper: '/bin/busybox' }, '0 0 1\n', '0 0 1\n') as { process: { args: string[]; capabilities: Record<string, string[]> } };
    expect(spec.process.capabilities.ambient).toEqual(['CAP_DAC_OVERRIDE']);
    expect(spec.process.capabilities.inheritable).toEqual(['CAP_DAC_OVERRIDE']);
    expect(spec.process.args.slice(4, 7)).toEqual(['hoist-emulation', 'r', '1']);
    expect(spec.process.args[3]).toContain('setpriv --inh-caps -dac_override --ambient-caps -dac_override');
  });
});
