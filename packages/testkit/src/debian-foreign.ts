/**
 * A Debian bookworm minbase for another architecture (arm64), made offline from Debian's
 * archive as the issue asks: `debootstrap --foreign --arch arm64`, then the second stage run
 * by hoist itself as an emulated RUN step (QEMU through the step's private binfmt_misc, so no
 * host setup). Slow (minutes under emulation): made once and cached as an OCI layout.
 */
import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { debianMirror, TEST_CACHE } from './debian.js';
import { hoist } from './hoist.js';
import { tempDir } from './temp.js';
import { run } from './tools.js';

async function must(cmd: string, args: string[], timeoutMs = 1_800_000): Promise<string> {
  const r = await run(cmd, args, { timeoutMs });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}:\n${r.stderr.slice(-3000)}${r.stdout.slice(-2000)}`);
  return r.stdout;
}

/** The OCI layout (tag `bookworm`) of the arm64 Debian base, made on first use. */
export async function debianForeignLayout(debArch = 'arm64'): Promise<string> {
  const layout = path.join(TEST_CACHE, `debian-bookworm-${debArch}-hoist.oci`);
  if (existsSync(path.join(layout, 'index.json'))) return layout;
  const work = await tempDir(`debian-${debArch}`);
  try {
    const rootfs = path.join(work, 'rootfs');
    await must('debootstrap', ['--foreign', `--arch=${debArch}`, '--variant=minbase', 'bookworm', rootfs, debianMirror()]);
    // the first stage leaves /proc a symlink to the host's: the sandbox mounts its own there
    await fsp.rm(path.join(rootfs, 'proc'), { force: true });
    await fsp.mkdir(path.join(rootfs, 'proc'));
    const store = path.join(work, 'store');
    const imp = await hoist(['import', '--root', store, '--platform', `linux/${debArch}`, rootfs, 'debian-foreign:1']);
    if (imp.code !== 0) throw new Error(`import: ${imp.stderr}`);
    const ctx = path.join(work, 'ctx');
    await fsp.mkdir(ctx);
    // container=lxc: debootstrap then skips its mknod test and device setup (a sandbox has its own /dev)
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM debian-foreign:1\nRUN container=lxc /debootstrap/debootstrap --second-stage\n');
    const b = await hoist(['build', '--root', store, '--progress', 'plain', '--network', 'none', '--platform', `linux/${debArch}`, '-t', 'debian:bookworm', ctx], { timeoutMs: 1_800_000 });
    if (b.code !== 0) throw new Error(`second stage: ${b.stderr.slice(-3000)}`);
    const tmp = `${layout}.tmp-${process.pid}`;
    await must('skopeo', ['copy', '-q', `oci:${store}/oci:docker.io/library/debian:bookworm`, `oci:${tmp}:bookworm`]);
    await fsp.rename(tmp, layout).catch(async () => fsp.rm(tmp, { recursive: true, force: true }));
  } finally {
    await run('bash', ['-c', `grep -o ' ${work}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l`]);
    await fsp.rm(work, { recursive: true, force: true });
  }
  return layout;
}
