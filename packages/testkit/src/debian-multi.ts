/**
 * Issue 11's combined fixtures: Debian bookworm for linux/amd64 and linux/arm64 served as one
 * multi-platform OCI index by the test registry, and Debian packages (.deb files, any
 * architecture) fetched once with `apt-get download` and cached, so that a Dockerfile installs
 * them offline with `apt-get install ./file.deb`.
 */
import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { debianTarball, TEST_CACHE } from './debian.js';
import { debianForeignLayout } from './debian-foreign.js';
import { hoist } from './hoist.js';
import { tempDir } from './temp.js';
import { pushIndex, type PushedManifest } from './multiarch.js';
import { run } from './tools.js';

async function must(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<string> {
  const r = await run(cmd, args, { ...opts, timeoutMs: 900_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/**
 * The .deb of a Debian package for a Debian architecture (`hello`, `arm64`), cached under the
 * test cache. A foreign architecture is added to dpkg first when missing (scripts/setup.sh adds arm64).
 */
export async function debianPackage(pkg: string, debArch: string): Promise<string> {
  const file = path.join(TEST_CACHE, 'debs', `${pkg}_${debArch}.deb`);
  if (existsSync(file)) return file;
  const native = (await must('dpkg', ['--print-architecture'])).trim();
  if (debArch !== native && !(await must('dpkg', ['--print-foreign-architectures'])).split('\n').includes(debArch)) {
    await must('dpkg', ['--add-architecture', debArch]);
    await must('apt-get', ['update', '-qq']);
  }
  const work = await tempDir(`deb-${pkg}-${debArch}`);
  try {
    await must('apt-get', ['download', `${pkg}:${debArch}`], { cwd: work });
    const deb = (await fsp.readdir(work)).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${pkg}:${debArch} left no .deb`);
    await fsp.mkdir(path.dirname(file), { recursive: true });
    await fsp.copyFile(path.join(work, deb), `${file}.tmp-${process.pid}`);
    await fsp.rename(`${file}.tmp-${process.pid}`, file);
  } finally {
    await fsp.rm(work, { recursive: true, force: true });
  }
  return file;
}

/** The OCI layout (tag `bookworm`) of the amd64 Debian minbase, made from the cached debootstrap tarball. */
export async function debianLayout(): Promise<string> {
  const layout = path.join(TEST_CACHE, 'debian-bookworm-hoist.oci');
  if (existsSync(path.join(layout, 'index.json'))) return layout;
  const seed = await tempDir('debian-layout');
  try {
    const r = await hoist(['import', '--root', seed, await debianTarball(), 'debian:bookworm']);
    if (r.code !== 0) throw new Error(`import debian: ${r.stderr}`);
    const tmp = `${layout}.tmp-${process.pid}`;
    await must('skopeo', ['copy', '-q', `oci:${seed}/oci:docker.io/library/debian:bookworm`, `oci:${tmp}:bookworm`]);
    await fsp.rename(tmp, layout).catch(async () => fsp.rm(tmp, { recursive: true, force: true }));
  } finally {
    await fsp.rm(seed, { recursive: true, force: true });
  }
  return layout;
}

/** Copy an OCI layout's image to `repo` (through a temporary tag) and return its descriptor for an index. */
async function pushLayout(layout: string, repo: string, platform: PushedManifest['platform']): Promise<PushedManifest> {
  const tmpRef = `docker://${repo}:tmp-${platform.architecture}`;
  await must('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${layout}:bookworm`, tmpRef]);
  const raw = await must('skopeo', ['inspect', '--raw', '--tls-verify=false', tmpRef]);
  const mediaType = (JSON.parse(raw) as { mediaType?: string }).mediaType ?? 'application/vnd.oci.image.manifest.v1+json';
  return { digest: `sha256:${createHash('sha256').update(raw).digest('hex')}`, size: Buffer.byteLength(raw), mediaType, platform };
}

/**
 * debian:bookworm for linux/amd64 and linux/arm64 as one index `REGISTRY/x/debian-multi:bookworm`
 * (the arm64 one made offline by debootstrap --foreign and an emulated second stage: minutes the first time).
 */
export async function pushMultiPlatformDebian(registryHost: string): Promise<string> {
  const repo = `${registryHost}/x/debian-multi`;
  const amd = await pushLayout(await debianLayout(), repo, { os: 'linux', architecture: 'amd64' });
  const arm = await pushLayout(await debianForeignLayout('arm64'), repo, { os: 'linux', architecture: 'arm64', variant: 'v8' });
  await pushIndex(repo, 'bookworm', [amd, arm]);
  return `${repo}:bookworm`;
}
