import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { fetchGit, fetchUrl, isUrl, parseGitRef, type ImageSource, type ResolvedImage } from '@hoist/builder';
import { StoreLayer, appendLayer, emptyImage, familiarReference, ImageStore, isIndexMediaType, manifestLayers, parseReference, writeImage, type BlobStore, type Descriptor, type Layer, type Platform } from '@hoist/oci';
import { UsageError } from './errors.js';
import { importDirectoryLayer } from './commands/import-layer.js';

/** One `--build-context NAME=VALUE`, as buildx reads VALUE. */
export type NamedContext =
  | { kind: 'image'; name: string; ref: string }
  | { kind: 'oci-layout'; name: string; dir: string; tag?: string; digest?: string }
  | { kind: 'dir'; name: string; dir: string }
  | { kind: 'git'; name: string; url: string }
  /** An http(s) URL that is not a git repository: one file, as BuildKit's HTTP source gives it. */
  | { kind: 'url'; name: string; url: string };

const OCI_REF_NAME = 'org.opencontainers.image.ref.name';

/** `name=DIR | docker-image://REF | oci-layout://PATH[:TAG|@DIGEST] | https://…/repo.git#ref:subdir | https://…/FILE`. */
export async function parseBuildContexts(list: readonly string[]): Promise<NamedContext[]> {
  const out: NamedContext[] = [];
  for (const item of list) {
    const eq = item.indexOf('=');
    const name = eq > 0 ? item.slice(0, eq) : '';
    const value = item.slice(eq + 1);
    if (!name || !value) throw new UsageError(`--build-context "${item}": expected NAME=VALUE (a directory, docker-image://REF, oci-layout://PATH[:TAG] or a git URL)`);
    out.push(await parseOne(name, value, item));
  }
  return out;
}

async function parseOne(name: string, value: string, item: string): Promise<NamedContext> {
  if (value.startsWith('docker-image://')) {
    const ref = value.slice('docker-image://'.length);
    try {
      parseReference(ref);
    } catch (e) {
      throw new UsageError(`--build-context ${name}: ${(e as Error).message}`);
    }
    return { kind: 'image', name, ref };
  }
  if (value.startsWith('oci-layout://')) {
    const m = /^(.*?)(?:@(sha256:[a-f0-9]{64})|:([A-Za-z0-9_.-]+))?$/.exec(value.slice('oci-layout://'.length))!;
    const dir = path.resolve(m[1]!);
    if (!(await isDir(dir))) throw new UsageError(`--build-context ${name}: OCI layout ${dir} is not a directory`);
    return { kind: 'oci-layout', name, dir, ...(m[2] ? { digest: m[2] } : {}), ...(m[3] ? { tag: m[3] } : {}) };
  }
  if (parseGitRef(value)) return { kind: 'git', name, url: value };
  if (isUrl(value)) return { kind: 'url', name, url: value };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    throw new UsageError(`--build-context "${item}": unsupported URL; valid: a directory, docker-image://REF, oci-layout://PATH[:TAG], a git URL (https://…/repo.git#ref:subdir) or an http(s) URL`);
  }
  const dir = path.resolve(value);
  if (!(await isDir(dir))) throw new UsageError(`--build-context ${name}: ${value} is not a directory`);
  return { kind: 'dir', name, dir };
}

async function isDir(p: string): Promise<boolean> {
  return fsp.stat(p).then((s) => s.isDirectory(), () => false);
}

/** How BuildKit matches a named context: the familiar name, without `:latest`. */
export function contextKey(name: string): string {
  try {
    return familiarReference(parseReference(name)).replace(/:latest$/, '');
  } catch {
    return name.toLowerCase();
  }
}

/**
 * An ImageSource that answers named contexts first: `docker-image://` through the usual source,
 * an OCI layout copied into the store, a directory (or git checkout, or an http file) as a
 * one-layer image of 0:0 files with an empty config (what BuildKit gives `FROM <local context>`). Everything else goes to `inner`.
 */
export class NamedContextSource implements ImageSource {
  private readonly byKey = new Map<string, NamedContext>();
  private readonly made = new Map<string, Promise<ResolvedImage>>();

  constructor(
    private readonly inner: ImageSource,
    contexts: readonly NamedContext[],
    private readonly o: { store: ImageStore; scratchDir: string },
  ) {
    for (const c of contexts) this.byKey.set(contextKey(c.name), c);
  }

  resolve(ref: string, opts: { platform: Platform; signal?: AbortSignal }): Promise<ResolvedImage> {
    const c = this.byKey.get(contextKey(ref));
    if (!c) return this.inner.resolve(ref, opts);
    if (c.kind === 'image') return this.inner.resolve(c.ref, opts);
    let p = this.made.get(c.name);
    if (!p) {
      p = this.materialise(c, opts);
      this.made.set(c.name, p);
    }
    return p;
  }

  private async materialise(c: Exclude<NamedContext, { kind: 'image' }>, opts: { platform: Platform; signal?: AbortSignal }): Promise<ResolvedImage> {
    if (c.kind === 'oci-layout') return this.fromLayout(c, opts.platform);
    if (c.kind === 'dir') return this.fromDirectory(c.name, c.dir, opts.platform);
    await fsp.mkdir(this.o.scratchDir, { recursive: true });
    const tmp = await fsp.mkdtemp(path.join(this.o.scratchDir, `context-${c.kind}-`));
    const signal = opts.signal ? { signal: opts.signal } : {};
    try {
      if (c.kind === 'url') {
        await fetchUrl(c.url, tmp, { label: `--build-context ${c.name}=${c.url}`, ...signal });
        return await this.fromDirectory(c.name, tmp, opts.platform);
      }
      const { root } = await fetchGit(parseGitRef(c.url)!, tmp, signal);
      return await this.fromDirectory(c.name, root, opts.platform);
    } finally {
      await fsp.rm(tmp, { recursive: true, force: true });
    }
  }

  private async fromDirectory(name: string, dir: string, platform: Platform): Promise<ResolvedImage> {
    const sde = process.env.SOURCE_DATE_EPOCH;
    // BuildKit's local sources hand their files over as 0:0, whoever owns them on the host
    const owner = { uid: 0, gid: 0 };
    const layer = await importDirectoryLayer(dir, this.o.store.blobs, sde !== undefined && /^\d+$/.test(sde) ? { sourceDateEpoch: Number(sde), owner } : { owner });
    const img = appendLayer(emptyImage(platform), layer.descriptor, layer.diffId, { created: '1970-01-01T00:00:00Z', created_by: `build context ${name}` });
    const w = await writeImage(this.o.store.blobs, { ...img, config: { ...img.config, created: '1970-01-01T00:00:00Z' } });
    return this.loaded(name, w.descriptor, platform, this.o.store);
  }

  private async fromLayout(c: Extract<NamedContext, { kind: 'oci-layout' }>, platform: Platform): Promise<ResolvedImage> {
    const layout = new ImageStore(c.dir);
    const idx = JSON.parse(await fsp.readFile(path.join(c.dir, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
    const pick = c.digest
      ? idx.manifests.find((m) => m.digest === c.digest)
      : c.tag
        ? idx.manifests.find((m) => m.annotations?.[OCI_REF_NAME] === c.tag)
        : idx.manifests.length === 1 ? idx.manifests[0] : undefined;
    if (!pick) throw new UsageError(`--build-context ${c.name}: no image ${c.digest ?? c.tag ?? '(the layout holds several; add :TAG)'} in OCI layout ${c.dir}`);
    const img = await layout.load(pick, platform);
    // the blobs the build reads come into the store (verified as they are copied)
    const blobs = this.o.store.blobs;
    if (isIndexMediaType(pick.mediaType)) await blobs.putBytes(await layout.blobs.getBytes(pick), pick.mediaType);
    await blobs.putBytes(img.manifest.raw, img.descriptor.mediaType);
    await blobs.putBytes(img.config.raw, img.manifest.value.config.mediaType);
    for (const l of img.manifest.value.layers) if (!(await blobs.has(l.digest))) await blobs.put(layout.blobs.get(l), { expected: { digest: l.digest, size: l.size } });
    return { ref: c.name, descriptor: img.descriptor, manifest: img.manifest, config: img.config, layers: storeLayers(blobs, img) };
  }

  private async loaded(name: string, desc: Descriptor, platform: Platform, store: ImageStore): Promise<ResolvedImage> {
    const img = await store.load(desc, platform);
    return { ref: name, descriptor: img.descriptor, manifest: img.manifest, config: img.config, layers: storeLayers(store.blobs, img) };
  }
}

/** The layers of an image whose blobs are in `blobs`. */
function storeLayers(blobs: BlobStore, img: Pick<ResolvedImage, 'manifest' | 'config'>): Layer[] {
  return manifestLayers(img.manifest.value, img.config.value, (d, diffId) => new StoreLayer(blobs, d, diffId));
}
