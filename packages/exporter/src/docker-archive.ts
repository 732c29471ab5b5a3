import { createHash } from 'node:crypto';
import { chainIds, digestHex, familiarReference, parseReference, type Digest, type ImageConfig } from '@hoist/oci';
import { ExportError, throwIfAborted } from './errors.js';
import type { ExportImage, ImageManifest } from './images.js';
import { measureLayer, uncompressedLayer } from './layer-data.js';
import type { TarSink } from './tar-sink.js';

/** One entry of a docker-archive's `manifest.json` (the format `docker save` writes and `docker load` reads). */
export interface DockerManifestEntry {
  /** Path of the image config in the archive: `<sha256 hex of the config>.json`. */
  Config: string;
  /** Familiar names (`app:1`, `localhost:5000/app:1`); null when the image has none. */
  RepoTags: string[] | null;
  /** Paths of the uncompressed layer tars, bottom first (`<v1 id>/layer.tar`). */
  Layers: string[];
}


/**
 * Legacy (v1) layer ids for the classic `<id>/layer.tar` layout: derived from the chain (so a
 * layer shared by two images in one archive is written once) and, for the top layer, the config
 * (so two images never share a top id).
 */
export function legacyLayerIds(diffIds: readonly Digest[], configDigest: Digest): string[] {
  const chains = chainIds(diffIds);
  const ids: string[] = [];
  chains.forEach((c, i) => {
    const h = createHash('sha256').update(`${ids[i - 1] ?? ''}\n${c}`);
    if (i === chains.length - 1) h.update(`\n${configDigest}`);
    ids.push(h.digest('hex'));
  });
  return ids;
}

function legacyJson(config: ImageConfig, id: string, parent: string | undefined, top: boolean): string {
  const base: Record<string, unknown> = { id };
  if (parent) base.parent = parent;
  if (top) {
    const { rootfs: _r, history: _h, ...rest } = config;
    return JSON.stringify({ ...base, ...rest });
  }
  return JSON.stringify({ ...base, created: config.created ?? '1970-01-01T00:00:00Z', container_config: {}, os: config.os, architecture: config.architecture });
}

/** The familiar names Docker prints and stores for references. */
function repoTags(refs: readonly string[]): string[] {
  return refs.map((r) => familiarReference(parseReference(r)));
}

async function writeImageLayers(m: ImageManifest, sink: TarSink, signal?: AbortSignal): Promise<string[]> {
  const cfg = m.config.value;
  const layers = m.manifest.value.layers;
  const diffIds = cfg.rootfs.diff_ids;
  if (diffIds.length !== layers.length) {
    throw new ExportError('STORE_CORRUPT', `image ${m.descriptor.digest}: ${layers.length} layers but ${diffIds.length} diff_ids in its config`);
  }
  const ids = legacyLayerIds(diffIds, m.manifest.value.config.digest);
  const paths: string[] = [];
  for (let i = 0; i < layers.length; i++) {
    throwIfAborted(signal);
    const id = ids[i]!;
    const tarPath = `${id}/layer.tar`;
    paths.push(tarPath);
    if (sink.has(tarPath)) continue;
    const layer = m.layers[i]!;
    // pass 1: the uncompressed size (a tar header needs it first) and the diff_id check
    const size = await measureLayer(layer, signal);
    await sink.file(`${id}/VERSION`, '1.0');
    await sink.file(`${id}/json`, legacyJson(cfg, id, ids[i - 1], i === layers.length - 1));
    // pass 2: the bytes, verified again as they stream
    await sink.stream(tarPath, size, uncompressedLayer(layer, { size, ...(signal ? { signal } : {}) }));
  }
  return paths;
}

/**
 * A docker-archive (`docker save`'s classic format, read by `docker load` and
 * `skopeo copy docker-archive:`): per image its config `<hex>.json` and uncompressed layer tars
 * `<id>/layer.tar` (so DiffIDs match byte for byte), `manifest.json`, `repositories`.
 *
 * Beside them each image manifest is kept as `blobs/sha256/<hex>` (ignored by docker and
 * skopeo): `hoist load` uses it to restore the exact manifest, and so the same image digest,
 * when recompressing the layers reproduces the original blobs (images hoist built or imported).
 */
export async function writeDockerArchive(images: readonly ExportImage[], sink: TarSink, opts: { signal?: AbortSignal } = {}): Promise<DockerManifestEntry[]> {
  const entries: DockerManifestEntry[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  for (const img of images) {
    const m = img.primary;
    const layerPaths = await writeImageLayers(m, sink, opts.signal);
    const configName = `${digestHex(m.manifest.value.config.digest)}.json`;
    if (!sink.has(configName)) await sink.file(configName, m.config.raw);
    const manifestName = `blobs/sha256/${digestHex(m.descriptor.digest)}`;
    if (!sink.has(manifestName)) await sink.file(manifestName, m.manifest.raw);
    const tags = repoTags(img.refs);
    entries.push({ Config: configName, RepoTags: tags.length > 0 ? tags : null, Layers: layerPaths });
    const top = layerPaths.at(-1)?.split('/')[0];
    if (top) {
      for (const t of tags) {
        const i = t.lastIndexOf(':');
        (repositories[t.slice(0, i)] ??= {})[t.slice(i + 1)] = top;
      }
    }
  }
  await sink.file('manifest.json', JSON.stringify(entries));
  await sink.file('repositories', JSON.stringify(repositories));
  await sink.finish();
  return entries;
}
