import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { OciError, pairLayers, parseConfig, type BlobStore, type Descriptor, type Digest, type ImageConfig, type LayerPair, type Manifest } from '@hoist/oci';
import { SnapshotError } from './errors.js';
import type { ReadLimits } from './tar/reader.js';
import { checkLayer, type LayerCheckResult } from './verify.js';

/** A check fed with a blob's bytes, in order, as they arrive. */
export interface ContentCheck {
  /** Resolves when the check can take more; rejects as soon as the content is known bad. */
  write(chunk: Buffer): Promise<void>;
  /** Every byte was written: resolves when the content passed, rejects with why not. */
  end(): Promise<void>;
  /** Give up (the transfer restarted or failed). */
  abort(): void;
}

/**
 * Verifies layer blobs against the diff_ids image configs give them (checkLayer: a full read
 * as extraction would do it, decompressed, nothing written) and remembers what it verified in
 * the blob store, so that a blob is decompressed for checking once, not at every pull or push.
 */
/** What unpacks a layer while it downloads (the Snapshotter): undefined when nobody wants it unpacked now. */
export interface DownloadUnpacker {
  unpackFrom(layer: Descriptor, diffId: Digest, src: AsyncIterable<Buffer>): Promise<void> | undefined;
}

export class LayerChecker {
  constructor(
    private readonly blobs: BlobStore,
    private readonly limits: ReadLimits = {},
    /** When given, a download the snapshotter is waiting for is unpacked as it is checked (one pass, one decompression). */
    private readonly unpacker?: DownloadUnpacker,
  ) {}

  /** Whether the blob was verified before to have this diff_id; DIFF_ID_MISMATCH when another. */
  async known(layer: Pick<Descriptor, 'digest'>, diffId: Digest): Promise<boolean> {
    const seen = await this.blobs.verifiedDiffId(layer.digest);
    if (seen === undefined) return false;
    if (seen !== diffId) {
      throw new SnapshotError('DIFF_ID_MISMATCH', `layer ${layer.digest} hashes to ${seen} uncompressed, its image config says diff_id ${diffId}`);
    }
    return true;
  }

  /** A check of the blob fed while it is being transferred (e.g. downloaded). */
  begin(layer: Pick<Descriptor, 'digest'> & Partial<Descriptor>, diffId: Digest): ContentCheck {
    const input = new PassThrough({ highWaterMark: 1024 * 1024 });
    // a full descriptor (as a download has) names the snapshot's blob
    const unpacking = layer.size !== undefined && layer.mediaType !== undefined ? this.unpacker?.unpackFrom({ ...layer, size: layer.size, mediaType: layer.mediaType }, diffId, input) : undefined;
    return new StreamCheck(input, unpacking ?? this.run(layer, diffId, input));
  }

  /** Verify a blob that is in the store, unless known: one streaming read, decompressed. */
  async verify(layer: Descriptor, diffId: Digest, signal?: AbortSignal): Promise<void> {
    if (await this.known(layer, diffId)) return;
    await this.run(layer, diffId, this.blobs.get(layer), signal);
  }

  /**
   * Every layer of an image: as many layers as diff_ids, each distinct blob verified (two at a
   * time). The error names the layer and its position. With `absent: 'skip'`, blobs not in the
   * store are left out (a push copies those from the registry they were resolved from).
   */
  async verifyImage(manifest: Pick<Manifest, 'layers'>, config: Pick<ImageConfig, 'rootfs'>, opts: { signal?: AbortSignal; absent?: 'fail' | 'skip' } = {}): Promise<void> {
    let pairs: LayerPair[];
    try {
      pairs = pairLayers(manifest, config);
    } catch (e) {
      throw new SnapshotError('DIFF_ID_MISMATCH', (e as OciError).message, { cause: e });
    }
    const total = manifest.layers.length;
    let next = 0;
    let failed = false;
    const worker = async (): Promise<void> => {
      while (next < pairs.length && !failed) {
        const p = pairs[next++]!;
        if (opts.absent === 'skip' && !(await this.blobs.has(p.layer.digest))) continue;
        await this.verify(p.layer, p.diffId, opts.signal).catch((e: unknown) => {
          failed = true;
          throw describeLayerError(e, p, total);
        });
      }
    };
    await Promise.all([worker(), worker()]);
  }

  /**
   * verifyImage for a manifest of the store, before a push: its config read from the store;
   * layers that are not here (lazily resolved base layers) are the registry's to copy.
   */
  async verifyManifest(manifest: Pick<Manifest, 'layers' | 'config'>, signal?: AbortSignal): Promise<void> {
    const config = parseConfig(await this.blobs.getBytes(manifest.config)).value;
    await this.verifyImage(manifest, config, { absent: 'skip', ...(signal ? { signal } : {}) });
  }

  private async run(layer: Pick<Descriptor, 'digest'>, diffId: Digest, src: AsyncIterable<Buffer>, signal?: AbortSignal): Promise<LayerCheckResult> {
    const r = await checkLayer(src, { ...this.limits, diffId, ...(signal ? { signal } : {}) });
    await this.blobs.noteVerifiedLayer(layer.digest, r.diffId);
    return r;
  }
}

/** The error of one layer's check, prefixed with which layer it is (same class and code). */
export function describeLayerError(e: unknown, p: LayerPair, total: number): unknown {
  if (!(e instanceof SnapshotError)) return e;
  const at = p.positions.map((i) => i + 1).join(', ');
  return new SnapshotError(e.code, `layer ${at} of ${total} (${p.layer.digest}): ${e.message}`, { cause: e });
}

class StreamCheck implements ContentCheck {
  private failure: { error: unknown } | undefined;
  constructor(
    private readonly input: PassThrough,
    private readonly result: Promise<unknown>,
  ) {
    input.on('error', () => undefined); // writes after a failed check: the failure is reported instead
    result.catch((error: unknown) => {
      this.failure = { error };
      input.destroy();
    });
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }

  async write(chunk: Buffer): Promise<void> {
    this.throwIfFailed();
    if (this.input.write(chunk)) return;
    await Promise.race([once(this.input, 'drain'), this.result]);
    this.throwIfFailed();
  }

  async end(): Promise<void> {
    this.throwIfFailed();
    this.input.end();
    await this.result;
  }

  abort(): void {
    this.input.destroy();
  }
}
