import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { appendLayer, emptyImage, familiarReference, formatPlatform, hostPlatform, parsePlatform, parseReference, writeImage, parseManifest, parseIndex, isIndexMediaType, type Descriptor } from '@hoist/oci';
import { ProotExecutor, runImage } from '@hoist/builder';
import { LayerChecker } from '@hoist/snapshotter';
import { importDirectoryLayer, importTarballLayer } from './import-layer.js';
import { UsageError } from '../errors.js';
import { findImage } from '../image-names.js';
import { renderTemplate } from '../go-template.js';
import { openStore } from '../store.js';
import { makeRegistryClient } from '../registry.js';
import { parseSecurityOpts } from '../args.js';
import type { ProgressMode } from '../progress.js';
import { chooseIsolation, hostIsolationFacts, isolationFlag } from '../isolation.js';

export async function imagesCommand(root: string | undefined, json: boolean): Promise<number> {
  const { store } = await openStore(root);
  const list = await store.list();
  if (json) {
    const out = [];
    for (const i of list) out.push({ ref: i.ref, digest: i.descriptor.digest, mediaType: i.descriptor.mediaType, platforms: await platformsOf(store, i.descriptor).catch(() => []) });
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return 0;
  }
  const rows = [['REPOSITORY', 'TAG', 'DIGEST', 'SIZE', 'PLATFORMS']];
  for (const i of list) {
    const r = parseReference(i.ref);
    const size = await imageSize(store, i.descriptor).catch(() => 0);
    const platforms = (await platformsOf(store, i.descriptor).catch(() => [])).join(',');
    rows.push([familiarReference({ ...r, tag: undefined } as typeof r), r.tag ?? '<none>', i.descriptor.digest.slice(7, 19), humanSize(size), platforms]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows) process.stdout.write(r.map((cell, c) => cell.padEnd(widths[c]!)).join('   ').trimEnd() + '\n');
  return 0;
}

async function imageSize(store: Awaited<ReturnType<typeof openStore>>['store'], d: Descriptor): Promise<number> {
  if (isIndexMediaType(d.mediaType)) {
    const idx = parseIndex(await store.blobs.getBytes(d)).value;
    return idx.manifests[0] ? imageSize(store, idx.manifests[0]) : 0;
  }
  const m = parseManifest(await store.blobs.getBytes(d)).value;
  return m.config.size + m.layers.reduce((a, l) => a + l.size, 0);
}

/** The platforms of an image: each manifest's of an index, else its config's. */
async function platformsOf(store: Awaited<ReturnType<typeof openStore>>['store'], d: Descriptor): Promise<string[]> {
  if (isIndexMediaType(d.mediaType)) {
    const idx = parseIndex(await store.blobs.getBytes(d)).value;
    return idx.manifests.filter((m) => m.platform && m.platform.architecture !== 'unknown').map((m) => formatPlatform(m.platform!));
  }
  const img = await store.load(d);
  return [formatPlatform({ os: img.config.value.os, architecture: img.config.value.architecture, ...(img.config.value.variant ? { variant: img.config.value.variant } : {}) })];
}

export function humanSize(n: number): string {
  if (n < 1000) return `${n}B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)}kB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(1)}MB`;
  return `${(n / 1e9).toFixed(2)}GB`;
}

/**
 * The manifest and config of an image; of an index, `--platform`'s (default: this host's), with
 * the index itself under `index` (its descriptor and each manifest's platform).
 */
export async function inspectCommand(ref: string, root: string | undefined, format?: string, opts: { platform?: string } = {}): Promise<number> {
  const { store } = await openStore(root);
  const found = await findImage(store, ref);
  const desc = found.descriptor;
  const img = await store.load(desc, opts.platform ? parsePlatform(opts.platform) : undefined);
  const index = isIndexMediaType(desc.mediaType) ? { descriptor: desc, manifests: parseIndex(await store.blobs.getBytes(desc)).value.manifests } : undefined;
  const out = { reference: ref, descriptor: img.descriptor, manifest: img.manifest.value, config: img.config.value, ...(index ? { index } : {}) };
  if (format === undefined) {
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return 0;
  }
  // docker's names for the usual fields beside ours: {{.Id}}, {{.Config.Env}}, {{.Architecture}}, ...
  const c = img.config.value;
  const docker = { Id: img.manifest.value.config.digest, RepoTags: found.refs, Created: c.created, Architecture: c.architecture, Os: c.os, Variant: c.variant, Config: c.config ?? {}, RootFS: c.rootfs };
  process.stdout.write(renderTemplate(format, { ...out, ...docker }) + '\n');
  return 0;
}

export async function importCommand(source: string, ref: string, root: string | undefined, opts: { message?: string; platform?: string }): Promise<number> {
  const platform = opts.platform ? parsePlatform(opts.platform) : hostPlatform();
  const { store } = await openStore(root);
  const st = await fsp.stat(source).catch(() => undefined);
  if (!st) throw new UsageError(`${source}: no such file or directory (expected a root filesystem directory or a tarball)`);
  const sde = process.env.SOURCE_DATE_EPOCH;
  const epoch = sde !== undefined && /^\d+$/.test(sde) ? Number(sde) : undefined;
  const layer = st.isDirectory()
    ? await importDirectoryLayer(path.resolve(source), store.blobs, epoch !== undefined ? { sourceDateEpoch: epoch } : {})
    : await importTarballLayer(path.resolve(source), store.blobs);
  const created = new Date((epoch ?? 0) * 1000).toISOString().replace('.000Z', 'Z');
  let img = emptyImage(platform);
  img = appendLayer(img, layer.descriptor, layer.diffId, { created, created_by: "hoist import", ...(opts.message ? { comment: opts.message } : {}) });
  img = { ...img, config: { ...img.config, created, config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] } } };
  const written = await writeImage(store.blobs, img);
  const full = await store.tag(ref, written.descriptor);
  process.stderr.write(`imported ${full}\n`);
  process.stdout.write(`${written.descriptor.digest}\n`);
  return 0;
}

export async function runCommand(ref: string, cmd: string[], root: string | undefined, o: { env: string[]; user?: string; workdir?: string; network?: string; runtime?: string; entrypoint?: string; securityOpt?: string[]; platform?: string; isolation?: string }, signal: AbortSignal): Promise<number> {
  const network = o.network ?? 'default';
  if (network !== 'default' && network !== 'host' && network !== 'none') throw new UsageError(`--network must be default, host or none, not "${o.network}"`);
  const seccomp = await parseSecurityOpts(o.securityOpt ?? []);
  const iso = chooseIsolation(isolationFlag(o.isolation ? ['--isolation', o.isolation] : []), hostIsolationFacts());
  const opened = await openStore(root);
  const found = await findImage(opened.store, ref);
  // no privileges (a locked-down pod): the command runs under proot, as RUN steps do there
  const proot = iso.mode === 'proot' ? { executor: new ProotExecutor({ tmpDir: path.join(opened.root, 'tmp'), reason: iso.reason }), stdout: (d: Buffer) => void process.stdout.write(d), stderr: (d: Buffer) => void process.stderr.write(d) } : {};
  return runImage({
    ...proot,
    store: opened.store,
    snapshotter: await opened.snapshotter(),
    root: opened.root,
    ref: found.refs[0]!,
    command: cmd,
    env: o.env,
    network,
    ...(seccomp ? { seccomp } : {}),
    inheritStdio: true,
    signal,
    ...(o.user ? { user: o.user } : {}),
    ...(o.workdir ? { workdir: o.workdir } : {}),
    ...(o.runtime ? { runtime: o.runtime } : {}),
    ...(o.platform ? { platform: parsePlatform(o.platform) } : {}),
    ...(o.entrypoint !== undefined ? { entrypoint: o.entrypoint === '' ? [] : [o.entrypoint] } : {}),
  });
}

export async function pushCommand(ref: string, dest: string | undefined, root: string | undefined, progress: ProgressMode, signal: AbortSignal): Promise<number> {
  const { store } = await openStore(root);
  const desc = await store.resolve(ref);
  if (!desc) throw new UsageError(`image ${ref} is not in the store; see \`hoist images\``);
  const client = makeRegistryClient(progress);
  // layers are checked against the config alongside the uploads (once per blob: see LayerChecker)
  await client.push(store, desc, dest ?? ref, { signal, checks: new LayerChecker(store.blobs) });
  process.stderr.write(`pushed ${dest ?? ref} ${desc.digest}\n`);
  return 0;
}

export async function pullCommand(ref: string, root: string | undefined, progress: ProgressMode, platform: string | undefined, signal: AbortSignal): Promise<number> {
  const { store } = await openStore(root);
  const { parsePlatform } = await import('@hoist/oci');
  const client = makeRegistryClient(progress);
  // every layer is verified against the config's diff_ids while it downloads, before anything is stored as usable
  const checks = new LayerChecker(store.blobs);
  const desc = await client.pull(ref, store, { signal, checks, ...(platform ? { platform: parsePlatform(platform) } : {}) });
  if (!parseReference(ref).digest) await store.tag(ref, desc);
  process.stderr.write(`pulled ${ref}\n`);
  process.stdout.write(`${desc.digest}\n`);
  return 0;
}

export async function rmCommand(refs: string[], root: string | undefined): Promise<number> {
  const { store } = await openStore(root);
  let rc = 0;
  for (const r of refs) {
    let found: Awaited<ReturnType<typeof findImage>>;
    try {
      found = await findImage(store, r);
    } catch (e) {
      // as tag and inspect: an unknown name is a usage error (exit 2); the other names are still removed
      if (!(e instanceof UsageError)) throw e;
      process.stderr.write(`hoist: ${e.message}\n`);
      rc = 2;
      continue;
    }
    // by ID: every name of that image goes, as `docker rmi -f ID`
    for (const name of found.refs) if (await store.untag(name)) process.stdout.write(`untagged ${name}\n`);
  }
  return rc;
}

export async function tagCommand(src: string, dest: string, root: string | undefined): Promise<number> {
  const { store } = await openStore(root);
  const desc = (await findImage(store, src)).descriptor;
  await store.tag(dest, desc);
  return 0;
}

