/**
 * Issue 11's Debian case: an arm64 Debian base made offline (debootstrap --foreign, second stage
 * emulated by hoist; cached in the test cache, minutes the first time), and a RUN apt-get install
 * on it for linux/arm64 with no binfmt_misc handler on the host: apt, dpkg and the maintainer
 * scripts all run as aarch64 programs through the step's private binfmt_misc instance.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { debianForeignLayout, foreignBusyboxDeb, HOIST_BIN, run, startRegistry, tempDir, type RunningRegistry } from '@hoist/testkit';

describe('multi-platform: apt-get install on an arm64 Debian, emulated', () => {
  let registry: RunningRegistry;
  let work: string;
  let base: string;

  beforeAll(async () => {
    [registry, work] = await Promise.all([startRegistry(), tempDir('mp-debian')]);
    const layout = await debianForeignLayout('arm64');
    base = `${registry.host}/x/debian:bookworm-arm64`;
    const cp = await run('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${layout}:bookworm`, `docker://${base}`]);
    if (cp.code !== 0) throw new Error(cp.stderr);
  }, 1_800_000);

  afterAll(async () => {
    await registry?.stop();
    if (work) await fsp.rm(work, { recursive: true, force: true });
  });

  it('RUN apt-get install of a .deb (dpkg, maintainer scripts) runs as aarch64; the result is arm64', async () => {
    const ctx = path.join(work, 'ctx');
    await fsp.mkdir(ctx, { recursive: true });
    await fsp.copyFile(await foreignBusyboxDeb('arm64'), path.join(ctx, 'busybox-static.deb'));
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), [
      `FROM ${base}`,
      'COPY busybox-static.deb /tmp/',
      'RUN apt-get install -y /tmp/busybox-static.deb && rm /tmp/busybox-static.deb',
      "RUN uname -m > /arch && dpkg --print-architecture > /dpkg-arch && dpkg-query -W -f '${Status}' busybox-static > /status",
      '',
    ].join('\n'));
    const out = path.join(work, 'out');
    const root = path.join(work, 'store');
    // no host handler: an empty tmpfs over /proc/sys/fs/binfmt_misc in this command's own mount namespace
    const script = `mount -t tmpfs -o size=1m hidden /proc/sys/fs/binfmt_misc && exec '${process.execPath}' '${HOIST_BIN}' build --root '${root}' --progress plain --network none --platform linux/arm64 -t deb:arm64 -o 'type=local,dest=${out}' '${ctx}'`;
    const r = await run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { timeoutMs: 900_000 });
    expect(r.stderr).toMatch(/Setting up busybox-static/);
    expect(r.code).toBe(0);
    expect(await fsp.readFile(path.join(out, 'arch'), 'utf8')).toBe('aarch64\n');
    expect(await fsp.readFile(path.join(out, 'dpkg-arch'), 'utf8')).toBe('arm64\n');
    expect(await fsp.readFile(path.join(out, 'status'), 'utf8')).toBe('install ok installed');
    const elf = await fsp.readFile(path.join(out, 'usr', 'bin', 'apt'));
    expect(elf.readUInt16LE(18)).toBe(0xb7); // EM_AARCH64
    const inspect = await run(process.execPath, [HOIST_BIN, 'inspect', '--root', root, 'deb:arm64']);
    expect((JSON.parse(inspect.stdout) as { config: { architecture: string } }).config.architecture).toBe('arm64');
  }, 900_000);
});
