/**
 * Issue 11 on the real parts: an arm64 busybox made offline from Debian's busybox-static:arm64
 * and served with the amd64 one as a multi-platform OCI index by the test registry; a build for
 * linux/arm64 runs its RUN steps under QEMU with no binfmt_misc handler on the host (the test
 * hides /proc/sys/fs/binfmt_misc in its own mount namespace), a $BUILDPLATFORM stage natively.
 */
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
    // nothing of the emulation reaches the image
    expect(await fsp.readdir(path.join(out, 'dev'))).toEqual([]);
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

  it('an unknown architecture: exit 1 before building', async () => {
    const ctx = await context('vax', 'FROM scratch\nRUN echo never\n');
    const r = await run(process.execPath, [HOIST_BIN, 'build', '--root', path.join(work, 'store-vax'), '--progress', 'plain', '--platform', 'linux/vax', ctx]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot build for linux/vax: unknown architecture "vax"');
  });
});
