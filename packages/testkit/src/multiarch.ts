/**
 * Multi-platform test bases, made offline from Debian packages: a foreign-architecture static
 * busybox (busybox-static:<arch>, unpacked with dpkg-deb), imported for its platform, and
 * multi-platform OCI indexes pushed to the test registry beside the amd64 images.
 */
import { createHash } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { TEST_CACHE } from './debian.js';
import { hoist, REPO_ROOT } from './hoist.js';
import { run } from './tools.js';

async function must(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<string> {
  const r = await run(cmd, args, { ...opts, timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/**
 * The static busybox of Debian's busybox-static for a Debian architecture (`arm64`), cached
 * under the test cache. Needs the architecture in dpkg (`dpkg --add-architecture arm64` and an
 * `apt-get update`: scripts/setup.sh does both), then downloads one .deb with apt.
 */
export async function foreignBusybox(debArch: string): Promise<string> {
  const dir = path.join(TEST_CACHE, `busybox-static-${debArch}`);
  const bin = path.join(dir, 'bin', 'busybox');
  if (existsSync(bin) && existsSync(path.join(dir, 'busybox-static.deb'))) return bin;
  await fsp.rm(dir, { recursive: true, force: true }); // an older cache without the .deb
  const work = `${dir}.tmp-${process.pid}`;
  await fsp.mkdir(work, { recursive: true });
  try {
    const archs = await must('dpkg', ['--print-foreign-architectures']);
    if (!archs.split('\n').includes(debArch)) {
      await must('dpkg', ['--add-architecture', debArch]);
      await must('apt-get', ['update', '-qq']);
    }
    await must('apt-get', ['download', `busybox-static:${debArch}`], { cwd: work });
    const deb = (await fsp.readdir(work)).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download busybox-static:${debArch} left no .deb`);
    await must('dpkg-deb', ['-x', path.join(work, deb), path.join(work, 'root')]);
    await fsp.mkdir(path.join(work, 'out', 'bin'), { recursive: true });
    await fsp.copyFile(path.join(work, 'root', 'bin', 'busybox'), path.join(work, 'out', 'bin', 'busybox'));
    await fsp.chmod(path.join(work, 'out', 'bin', 'busybox'), 0o755);
    await fsp.copyFile(path.join(work, deb), path.join(work, 'out', 'busybox-static.deb'));
    await fsp.rename(path.join(work, 'out'), dir).catch(() => undefined); // another run may have won
  } finally {
    await fsp.rm(work, { recursive: true, force: true });
  }
  return bin;
}

/** Debian's busybox-static .deb for a Debian architecture (cached with foreignBusybox). */
export async function foreignBusyboxDeb(debArch: string): Promise<string> {
  const bin = await foreignBusybox(debArch);
  return path.join(path.dirname(path.dirname(bin)), 'busybox-static.deb');
}

/** Import a busybox image for a foreign platform (`linux/arm64`) into a store as `ref`. */
export async function importForeignBusybox(root: string, o: { platform: string; debArch: string; ref: string }): Promise<void> {
  const bin = await foreignBusybox(o.debArch);
  await must('bash', [path.join(REPO_ROOT, 'fixtures', 'base', 'busybox.sh'), '--root', root, '--busybox', bin, '--platform', o.platform, '--ref', o.ref]);
}

/** One platform's image, already pushed: its manifest digest and size, and its platform. */
export interface PushedManifest {
  digest: string;
  size: number;
  mediaType: string;
  platform: { os: string; architecture: string; variant?: string };
}

/** Push a local image by digest (`REPO@sha256:…`) and return its descriptor. */
export async function pushByDigest(root: string, local: string, repo: string, platform: PushedManifest['platform']): Promise<PushedManifest> {
  const r = await hoist(['push', '--root', root, '--progress', 'quiet', local, `${repo}:tmp-${platform.architecture}`]);
  if (r.code !== 0) throw new Error(`push ${local}: ${r.stderr}`);
  const raw = await must('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${repo}:tmp-${platform.architecture}`]);
  const digest = `sha256:${createHash('sha256').update(raw).digest('hex')}`;
  const mediaType = (JSON.parse(raw) as { mediaType?: string }).mediaType ?? 'application/vnd.oci.image.manifest.v1+json';
  return { digest, size: Buffer.byteLength(raw), mediaType, platform };
}

/** PUT an OCI image index of already-pushed manifests as `repo:tag` (registry at 127.0.0.1). */
export async function pushIndex(repo: string, tag: string, manifests: PushedManifest[]): Promise<string> {
  const index = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests };
  const body = JSON.stringify(index);
  const slash = repo.indexOf('/');
  const res = await fetch(`http://${repo.slice(0, slash)}/v2/${repo.slice(slash + 1)}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'content-type': index.mediaType },
    body,
  });
  if (res.status !== 201) throw new Error(`PUT index ${repo}:${tag}: HTTP ${res.status} ${await res.text()}`);
  return `sha256:${createHash('sha256').update(body).digest('hex')}`;
}

/**
 * busybox for linux/amd64 and linux/arm64 as one multi-platform index `REGISTRY/x/busybox-multi:latest`.
 * `seed` is a store that already holds the amd64 busybox:latest (storeWithBusybox()).
 */
export async function pushMultiPlatformBusybox(seed: string, registryHost: string): Promise<string> {
  await importForeignBusybox(seed, { platform: 'linux/arm64', debArch: 'arm64', ref: 'busybox:arm64' });
  const repo = `${registryHost}/x/busybox-multi`;
  const amd = await pushByDigest(seed, 'busybox:latest', repo, { os: 'linux', architecture: 'amd64' });
  const arm = await pushByDigest(seed, 'busybox:arm64', repo, { os: 'linux', architecture: 'arm64', variant: 'v8' });
  await pushIndex(repo, 'latest', [amd, arm]);
  return `${repo}:latest`;
}

