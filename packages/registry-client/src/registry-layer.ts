import type { Readable } from 'node:stream';
import { BlobLayer, type BlobStore, type Descriptor, type Digest, type LayerOpenOptions, type LayerPair, type Reference } from '@hoist/oci';
import type { LayerChecks } from './layer-pull.js';

/** The client operations a registry layer uses (the RegistryClient provides them). */
export interface LayerTransport {
  openBlob(ref: Reference, desc: Descriptor, opts: { signal?: AbortSignal }): Promise<Readable>;
  fetchBlob(ref: Reference, desc: Descriptor, blobs: BlobStore, opts: { signal?: AbortSignal }): Promise<'exists' | 'pulled'>;
  fetchLayer(ref: Reference, pair: LayerPair, blobs: BlobStore, opts: { checks: LayerChecks; total: number; signal?: AbortSignal }): Promise<void>;
}

export interface RegistryLayerOptions {
  /** Verify the blob against its diff_id while `fetchInto` downloads it (the snapshotter's LayerChecker). */
  checks?: LayerChecks;
  /** The layer's position(s) in its image and the image's layer count, for messages ("layer 2 of 5"). */
  positions?: number[];
  total?: number;
  /** Called after `fetchInto` brought the blob into a store (a base image is tagged once complete). */
  onFetched?: () => Promise<void>;
}

/**
 * A layer blob in a registry repository, lazy: no request is made until it is opened or
 * fetched. `open` streams the blob verified against its digest; `fetchInto` downloads it into
 * a store (resumable, one download per blob at a time) and, with `checks`, verifies it against
 * its diff_id in the same pass.
 */
export class RegistryLayer extends BlobLayer {
  constructor(
    private readonly transport: LayerTransport,
    readonly ref: Reference,
    descriptor: Descriptor,
    diffId: Digest,
    private readonly o: RegistryLayerOptions = {},
  ) {
    super(descriptor, diffId, { kind: 'registry', where: `${ref.registry}/${ref.repository}`, repository: { registry: ref.registry, repository: ref.repository } });
  }

  open(opts: LayerOpenOptions = {}): Promise<Readable> {
    return this.transport.openBlob(this.ref, this.descriptor, opts);
  }

  override async fetchInto(blobs: BlobStore, opts: LayerOpenOptions = {}): Promise<'exists' | 'fetched'> {
    if (await blobs.has(this.descriptor.digest)) return 'exists';
    const signal = opts.signal ? { signal: opts.signal } : {};
    if (this.o.checks) {
      const pair = { layer: this.descriptor, diffId: this.diffId, positions: this.o.positions ?? [0] };
      await this.transport.fetchLayer(this.ref, pair, blobs, { checks: this.o.checks, total: this.o.total ?? 1, ...signal });
    } else {
      await this.transport.fetchBlob(this.ref, this.descriptor, blobs, signal);
    }
    await this.o.onFetched?.();
    return 'fetched';
  }
}
