import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { BlobStore } from './blob-store.js';
import { decompressLayer } from './decompress.js';
import type { Digest } from './digest.js';
import { OciError } from './errors.js';
import type { Descriptor, ImageConfig, Manifest, Parsed } from './types.js';

/** Where a layer's blob is: the local store, a registry, or an imported build cache. */
export interface LayerOrigin {
  kind: 'store' | 'registry' | 'cache';
  /** The store root, `registry/repository`, or the cache's reference or directory (for messages). */
  where: string;
  /** The repository that holds the blob, when it is in a registry: a push to that registry mounts it from there. */
  repository?: { registry: string; repository: string };
}

export interface LayerOpenOptions {
  signal?: AbortSignal;
}

/**
 * One layer of an image, wherever its blob is (what go-containerregistry calls a `v1.Layer`).
 * Writers (push, OCI layouts, archives) read layers only through this, so an image may mix
 * layers from the store, a base image's registry and an imported cache. Remote layers are
 * lazy: nothing is fetched until `open`, `openUncompressed` or `fetchInto` is called.
 */
export interface Layer {
  /** The blob: digest, size and media type. */
  readonly descriptor: Descriptor;
  /** The digest of the uncompressed tar (the image config's `rootfs.diff_ids` entry). */
  readonly diffId: Digest;
  readonly origin: LayerOrigin;
  /** The compressed blob; the stream fails (DIGEST_MISMATCH, SIZE_MISMATCH) unless its bytes match the descriptor. */
  open(opts?: LayerOpenOptions): Promise<Readable>;
  /** The uncompressed tar; the stream fails with DIFF_ID_MISMATCH unless it hashes to `diffId`. */
  openUncompressed(opts?: LayerOpenOptions): Promise<Readable>;
  /**
   * Whether `open` is expected to work without asking anyone: a store layer checks that its blob
   * is there; a remote layer answers true without a request (it fails when opened if it is gone).
   */
  available(): Promise<boolean>;
  /** Bring the blob into `blobs`, verified; nothing to do when it is there already. */
  fetchInto(blobs: BlobStore, opts?: LayerOpenOptions): Promise<'exists' | 'fetched'>;
}

/** A layer whose bytes come from `open()`: the uncompressed view and the copy into a store are made from it. */
export abstract class BlobLayer implements Layer {
  constructor(
    readonly descriptor: Descriptor,
    readonly diffId: Digest,
    readonly origin: LayerOrigin,
  ) {}

  abstract open(opts?: LayerOpenOptions): Promise<Readable>;

  async available(): Promise<boolean> {
    return true;
  }

  async openUncompressed(opts: LayerOpenOptions = {}): Promise<Readable> {
    return uncompressedStream(await this.open(opts), this, opts.signal);
  }

  async fetchInto(blobs: BlobStore, opts: LayerOpenOptions = {}): Promise<'exists' | 'fetched'> {
    if (await blobs.has(this.descriptor.digest)) return 'exists';
    const expected = { digest: this.descriptor.digest, size: this.descriptor.size };
    await blobs.put(await this.open(opts), { expected, ...(opts.signal ? { signal: opts.signal } : {}) });
    return 'fetched';
  }
}

/** A layer whose blob is in a local blob store (the hoist store, or an OCI layout directory). */
export class StoreLayer extends BlobLayer {
  constructor(
    private readonly blobs: BlobStore,
    descriptor: Descriptor,
    diffId: Digest,
  ) {
    super(descriptor, diffId, { kind: 'store', where: blobs.root });
  }

  async open(): Promise<Readable> {
    return this.blobs.get(this.descriptor);
  }

  override available(): Promise<boolean> {
    return this.blobs.has(this.descriptor.digest);
  }
}

/**
 * The uncompressed tar of a compressed layer stream (gzip, zstd or none, from its first bytes),
 * hashed as it flows: the stream fails with DIFF_ID_MISMATCH at its end unless it hashes to
 * `layer.diffId`, so a reader writes into something it can discard.
 */
export function uncompressedStream(compressed: Readable, layer: Pick<Layer, 'descriptor' | 'diffId'>, signal?: AbortSignal): Readable {
  async function* tar(): AsyncGenerator<Buffer> {
    const d = await decompressLayer(compressed);
    const hash = createHash('sha256');
    let ok = false;
    try {
      for await (const chunk of d.stream) {
        signal?.throwIfAborted();
        hash.update(chunk);
        yield chunk;
      }
      const got = `sha256:${hash.digest('hex')}`;
      if (got !== layer.diffId) throw new OciError('DIFF_ID_MISMATCH', `layer ${layer.descriptor.digest} uncompresses to ${got}, its diff_id is ${layer.diffId}`);
      ok = true;
    } finally {
      if (!ok) d.cancel();
    }
  }
  return Readable.from(tar(), { objectMode: false });
}

/**
 * An image as the writers take it: the exact manifest and config bytes, and one layer per
 * manifest entry (in order), wherever each blob is.
 */
export interface LayeredImage {
  descriptor: Descriptor;
  manifest: Parsed<Manifest>;
  config: Parsed<ImageConfig>;
  layers: readonly Layer[];
}

/** The layers of a manifest, each paired with its config's diff_id and made by `make`. */
export function manifestLayers(manifest: Pick<Manifest, 'layers'>, config: Pick<ImageConfig, 'rootfs'>, make: (desc: Descriptor, diffId: Digest) => Layer): Layer[] {
  const ids = config.rootfs.diff_ids;
  if (ids.length !== manifest.layers.length) {
    throw new OciError('MANIFEST_INVALID', `the manifest lists ${manifest.layers.length} layer(s) but the image config ${ids.length} diff_id(s)`);
  }
  return manifest.layers.map((d, i) => make(d, ids[i]!));
}

/** Something that can provide layer blobs that are not in the store (an imported cache). */
export interface LayerProvider {
  /** The layer for this blob, or undefined when this provider does not have it. Makes no request. */
  layerFor(desc: Descriptor, diffId: Digest): Layer | undefined;
}

/**
 * Where each layer blob of one build comes from: the store when it has the blob, else a known
 * remote layer (a base image's, added with `add`), else the first provider that has it. Asking
 * makes no network request; the layer found transfers only when opened or fetched.
 */
export class LayerCatalog {
  private readonly known = new Map<string, Layer>();

  constructor(
    private readonly blobs: BlobStore,
    private readonly providers: readonly LayerProvider[] = [],
  ) {}

  /** Remote layers (a base image's) to find by digest; the first one added for a digest is kept. */
  add(layers: Iterable<Layer>): void {
    for (const l of layers) if (!this.known.has(l.descriptor.digest)) this.known.set(l.descriptor.digest, l);
  }

  /** The layer of a blob outside the store, or undefined when nothing known has it. */
  remote(desc: Descriptor, diffId: Digest): Layer | undefined {
    const known = this.known.get(desc.digest);
    if (known) return known;
    for (const p of this.providers) {
      const l = p.layerFor(desc, diffId);
      if (l) return l;
    }
    return undefined;
  }

  /** The layer of a blob: in the store if it is there, else a remote one; undefined when none has it. */
  async find(desc: Descriptor, diffId: Digest): Promise<Layer | undefined> {
    if (await this.blobs.has(desc.digest)) return new StoreLayer(this.blobs, desc, diffId);
    return this.remote(desc, diffId);
  }
}
