import {
  choosePlatform,
  formatPlatform,
  formatReference,
  parseReference,
  hostPlatform,
  isIndexMediaType,
  parseConfig,
  parseIndex,
  parseManifest,
  StoreLayer,
  manifestLayers,
  type Descriptor,
  type Layer,
  type LayeredImage,
  type ImageIndex,
  type ImageStore,
  type Parsed,
  type Platform,
} from '@hoist/oci';
import { Readable } from 'node:stream';
import { ExportError } from './errors.js';

/**
 * One platform's image: manifest and config (read from the store and verified), and its layers,
 * wherever each blob is (the store's, or those of a lazy build result).
 */
export type ImageManifest = LayeredImage;

/** An image to export under zero or more names. */
export interface ExportImage {
  /** The top descriptor: a manifest, or an index exported whole (every child present). */
  descriptor: Descriptor;
  index?: Parsed<ImageIndex>;
  /** Every manifest exported: one, or each child of the index. */
  manifests: ImageManifest[];
  /** The manifest for the chosen platform: what a docker-archive and a root filesystem use. */
  primary: ImageManifest;
  /** Full references (`docker.io/library/app:1`) to name it by; may be empty. */
  refs: string[];
}

export interface LoadImageOptions {
  /** For an index: the platform of `primary` (default: this host's). */
  platform?: Platform;
  /** Keep an index whole when all its manifests are in the store (OCI layouts); else only `primary`. */
  wholeIndex?: boolean;
  refs?: string[];
  /** Layers whose blobs are elsewhere (a build result's that stayed in a registry or cache); the others are the store's. */
  layers?: readonly Layer[];
}

async function loadManifest(store: ImageStore, desc: Descriptor, elsewhere: readonly Layer[] = []): Promise<ImageManifest> {
  const manifest = parseManifest(await store.blobs.getBytes(desc));
  const config = parseConfig(await store.blobs.getBytes(manifest.value.config));
  const plain: Descriptor = { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
  if (desc.platform) plain.platform = desc.platform;
  const known = new Map(elsewhere.map((l) => [l.descriptor.digest as string, l]));
  let layers: Layer[];
  try {
    layers = manifestLayers(manifest.value, config.value, (d, diffId) => known.get(d.digest) ?? new StoreLayer(store.blobs, d, diffId));
  } catch (e) {
    throw new ExportError('STORE_CORRUPT', `image ${desc.digest}: ${(e as Error).message}`, { cause: e });
  }
  return { descriptor: plain, manifest, config, layers };
}

/** Read an image (manifest or index) from the store for export. */
export async function loadExportImage(store: ImageStore, desc: Descriptor, opts: LoadImageOptions = {}): Promise<ExportImage> {
  const refs = opts.refs ?? [];
  const top: Descriptor = { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
  if (!isIndexMediaType(desc.mediaType)) {
    const m = await loadManifest(store, top, opts.layers);
    return { descriptor: top, manifests: [m], primary: m, refs };
  }
  const index = parseIndex(await store.blobs.getBytes(top));
  const want = opts.platform ?? hostPlatform();
  const pick = choosePlatform(index.value.manifests, want);
  if (!pick) throw new ExportError('IMAGE_UNKNOWN', `index ${desc.digest} has no image for ${formatPlatform(want)}`, { hint: 'choose one with --platform' });
  if (isIndexMediaType(pick.mediaType)) throw new ExportError('STORE_CORRUPT', `index ${desc.digest} points at another index for ${formatPlatform(want)}`);
  const primary = await loadManifest(store, pick, opts.layers);
  const children = index.value.manifests;
  const whole = opts.wholeIndex && children.every((c) => !isIndexMediaType(c.mediaType));
  if (whole) {
    const present = await Promise.all(children.map((c) => store.blobs.has(c.digest)));
    if (present.every(Boolean)) {
      const manifests: ImageManifest[] = [];
      for (const c of children) manifests.push(c.digest === pick.digest ? primary : await loadManifest(store, c, opts.layers));
      return { descriptor: top, index, manifests, primary, refs };
    }
  }
  return { descriptor: primary.descriptor, manifests: [primary], primary, refs };
}

/**
 * Resolve references in the store to images, one per distinct descriptor (names of the same
 * image are grouped, in the order given). Unknown references fail before anything is written.
 */
export async function resolveImages(store: ImageStore, refs: readonly string[], opts: Omit<LoadImageOptions, 'refs'> = {}): Promise<ExportImage[]> {
  const byDigest = new Map<string, { desc: Descriptor; refs: string[] }>();
  for (const ref of refs) {
    const desc = await store.resolve(ref);
    if (!desc) throw new ExportError('IMAGE_UNKNOWN', `image ${ref} is not in the store`, { hint: 'see `hoist images`' });
    const r = parseReference(ref);
    const entry = byDigest.get(desc.digest) ?? { desc, refs: [] };
    byDigest.set(desc.digest, entry);
    if (r.tag && !r.digest) {
      const full = formatReference(r);
      if (!entry.refs.includes(full)) entry.refs.push(full);
    }
  }
  const out: ExportImage[] = [];
  for (const { desc, refs: names } of byDigest.values()) out.push(await loadExportImage(store, desc, { ...opts, refs: names }));
  return out;
}

/** One blob of an exported image and how to read it: from memory (manifests, configs, the index) or from its layer. */
export interface ExportBlob {
  descriptor: Descriptor;
  /** The layer, for layer blobs (they may be anywhere); undefined for the JSON blobs held in memory. */
  layer?: Layer;
  /** The bytes, verified against the descriptor. */
  open(opts?: { signal?: AbortSignal }): Promise<Readable>;
}

function plain(d: Descriptor): Descriptor {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size };
}

/** Every blob of an image (configs and layers, then manifests, then the index), each once. */
export function exportBlobs(img: ExportImage): ExportBlob[] {
  const out: ExportBlob[] = [];
  const seen = new Set<string>();
  const add = (b: ExportBlob): void => {
    if (seen.has(b.descriptor.digest)) return;
    seen.add(b.descriptor.digest);
    out.push(b);
  };
  const bytes = (d: Descriptor, raw: Buffer): ExportBlob => ({ descriptor: plain(d), open: async () => Readable.from([raw]) });
  for (const m of img.manifests) {
    add(bytes(m.manifest.value.config, m.config.raw));
    for (const l of m.layers) add({ descriptor: plain(l.descriptor), layer: l, open: (o) => l.open(o) });
  }
  for (const m of img.manifests) add(bytes(m.descriptor, m.manifest.raw));
  if (img.index) add(bytes(img.descriptor, img.index.raw));
  return out;
}

/** Every blob of an image (configs and layers, then manifests, then the index). */
export function imageBlobs(img: ExportImage): Descriptor[] {
  return exportBlobs(img).map((b) => b.descriptor);
}

/** Fail with BLOB_MISSING unless every layer of the images can be read (the JSON blobs are in memory). */
export async function checkBlobsPresent(images: readonly ExportImage[]): Promise<void> {
  for (const img of images) {
    for (const b of exportBlobs(img)) {
      if (b.layer && !(await b.layer.available())) {
        throw new ExportError('BLOB_MISSING', `blob ${b.descriptor.digest} of ${img.refs[0] ?? img.descriptor.digest} is not in the store`, {
          hint: 'pull or rebuild the image (`hoist pull REF`), then retry; `hoist fsck` checks the store',
        });
      }
    }
  }
}
