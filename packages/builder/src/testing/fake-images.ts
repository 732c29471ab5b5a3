import { formatReference, parseReference, type ImageStore } from '@hoist/oci';
import type { ImageSource, ResolvedImage } from '../types.js';

/**
 * An ImageSource over one local store only (no registry): resolves what is tagged there and
 * counts the calls. Layers are always local, so fetchLayers has nothing to do.
 */
export class FakeImageSource implements ImageSource {
  readonly resolved: string[] = [];
  fetches = 0;

  constructor(private readonly store: ImageStore) {}

  async resolve(ref: string, opts: { platform: import('@hoist/oci').Platform }): Promise<ResolvedImage> {
    this.resolved.push(ref);
    const d = await this.store.resolve(formatReference(parseReference(ref)));
    if (!d) throw new Error(`${ref}: not in the fake image source`);
    const img = await this.store.load(d, opts.platform);
    return { ref, descriptor: img.descriptor, manifest: img.manifest, config: img.config };
  }

  async fetchLayers(): Promise<void> {
    this.fetches++;
  }
}
