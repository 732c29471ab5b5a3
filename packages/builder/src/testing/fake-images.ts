import { StoreLayer, formatReference, manifestLayers, parseReference, type ImageStore } from '@hoist/oci';
import type { ImageSource, ResolvedImage } from '../types.js';

/**
 * An ImageSource over one local store only (no registry): resolves what is tagged there and
 * counts the calls. Its layers are the store's.
 */
export class FakeImageSource implements ImageSource {
  readonly resolved: string[] = [];

  constructor(private readonly store: ImageStore) {}

  async resolve(ref: string, opts: { platform: import('@hoist/oci').Platform }): Promise<ResolvedImage> {
    this.resolved.push(ref);
    const d = await this.store.resolve(formatReference(parseReference(ref)));
    if (!d) throw new Error(`${ref}: not in the fake image source`);
    const img = await this.store.load(d, opts.platform);
    const layers = manifestLayers(img.manifest.value, img.config.value, (desc, diffId) => new StoreLayer(this.store.blobs, desc, diffId));
    return { ref, descriptor: img.descriptor, manifest: img.manifest, config: img.config, layers };
  }
}
