import { StoreLayer, formatReference, isIndexMediaType, manifestLayers, pairLayers, parseReference, type Descriptor, type ImageStore, type Layer, type Platform } from '@hoist/oci';
import type { ImageSource, ResolvedImage } from '@hoist/builder';
import type { LayerChecks, RegistryClient } from '@hoist/registry-client';

export interface StoreThenRegistryOptions {
  store: ImageStore;
  /** The registry client, made on first use (a build from the local store never loads it). */
  registry: () => Promise<RegistryClient>;
  pull?: 'missing' | 'always';
  /** Registry mirrors for docker.io (`--registry-mirror`, config `registryMirrors`), tried in order. */
  mirrors?: string[];
  /** How layers are verified against the config's diff_ids (the snapshotter's LayerChecker). */
  checks: LayerChecks;
}

/**
 * Base images for a build: the local store first (imported or built images, and earlier pulls),
 * then the registry named in the reference. From a registry only the manifest and config are
 * fetched up front; its layers are lazy registry layers, fetched when a step runs on them or the
 * image is exported, each one verified against its diff_id while it downloads, and the image is
 * tagged locally once all its layers are here and verified (as `hoist pull` does: a bad base is
 * never tagged).
 */
export class StoreThenRegistry implements ImageSource {
  private readonly pending = new Map<string, Descriptor>();

  /** Where a docker.io image was actually found (a mirror), for its layer downloads. */
  private readonly fetchFrom = new Map<string, string>();

  private readonly store: ImageStore;
  private readonly registry: () => Promise<RegistryClient>;
  private readonly pull: 'missing' | 'always';
  private readonly mirrors: string[];
  private readonly checks: LayerChecks;

  constructor(o: StoreThenRegistryOptions) {
    this.store = o.store;
    this.registry = o.registry;
    this.pull = o.pull ?? 'missing';
    this.mirrors = o.mirrors ?? [];
    this.checks = o.checks;
  }

  private async resolveRemote(full: string, opts: { platform: Platform; signal?: AbortSignal }): Promise<Awaited<ReturnType<RegistryClient['resolve']>>> {
    const o = { platform: opts.platform, ...(opts.signal ? { signal: opts.signal } : {}) };
    const ref = parseReference(full);
    if (ref.registry === 'docker.io') {
      for (const m of this.mirrors) {
        const host = m.replace(/^https?:\/\//, '').replace(/\/+$/, '');
        const viaMirror = formatReference({ ...ref, registry: host });
        try {
          const r = await (await this.registry()).resolve(viaMirror, o);
          this.fetchFrom.set(full, viaMirror);
          return r;
        } catch {
          // a mirror that fails or lacks the image is skipped, as Docker does
        }
      }
    }
    return (await this.registry()).resolve(full, o);
  }

  async resolve(ref: string, opts: { platform: Platform; signal?: AbortSignal }): Promise<ResolvedImage> {
    const full = formatReference(parseReference(ref));
    const local = this.pull === 'always' ? undefined : await this.store.resolve(full);
    const img = local ? await this.loadLocal(local, opts.platform) : undefined;
    if (img) {
      const layers = manifestLayers(img.manifest.value, img.config.value, (d, diffId) => new StoreLayer(this.store.blobs, d, diffId));
      return { ref: full, descriptor: img.descriptor, manifest: img.manifest, config: img.config, layers };
    }
    const r = await this.resolveRemote(full, opts);
    const blobs = this.store.blobs;
    await blobs.putBytes(r.config.raw, r.manifest.value.config.mediaType);
    await blobs.putBytes(r.manifest.raw, r.descriptor.mediaType);
    if (r.index) await blobs.putBytes(r.index.raw, r.top.mediaType);
    if (!parseReference(full).digest) this.pending.set(full, r.top);
    const resolved: ResolvedImage = { ref: full, descriptor: r.descriptor, manifest: r.manifest, config: r.config, layers: [] };
    resolved.layers = await this.registryLayers(resolved);
    await this.tagIfComplete(resolved);
    return resolved;
  }

  /** Lazy layers in the registry the image was found in (a mirror, maybe); fetched ones tag the image once all are here. */
  private async registryLayers(img: ResolvedImage): Promise<Layer[]> {
    const client = await this.registry();
    const from = this.fetchFrom.get(img.ref) ?? img.ref;
    const total = img.manifest.value.layers.length;
    const byBlob = new Map<string, Layer>();
    for (const pair of pairLayers(img.manifest.value, img.config.value)) {
      const opts = { checks: this.checks, positions: pair.positions, total, onFetched: () => this.tagIfComplete(img) };
      byBlob.set(pair.layer.digest, client.layer(from, pair.layer, pair.diffId, opts));
    }
    return img.manifest.value.layers.map((d) => byBlob.get(d.digest)!);
  }

  /**
   * A local image for the platform; undefined when the local index (pulled for another
   * platform) does not have this platform's manifest here: then it comes from the registry.
   */
  private async loadLocal(local: Descriptor, platform: Platform): Promise<Awaited<ReturnType<ImageStore['load']>> | undefined> {
    try {
      return await this.store.load(local, platform);
    } catch (e) {
      if (isIndexMediaType(local.mediaType)) return undefined;
      throw e;
    }
  }

  /** Tag a pulled base once every layer is in the store and known to match its diff_id. */
  private async tagIfComplete(img: ResolvedImage): Promise<void> {
    const top = this.pending.get(img.ref);
    if (!top) return;
    for (const pair of pairLayers(img.manifest.value, img.config.value)) {
      if (!(await this.store.blobs.has(pair.layer.digest))) return;
      // a blob that came another way (a cache import) is checked once here; a mismatch throws
      if (!(await this.checks.known(pair.layer, pair.diffId))) await this.checks.verify(pair.layer, pair.diffId);
    }
    await this.store.tag(img.ref, top);
    this.pending.delete(img.ref);
  }
}
