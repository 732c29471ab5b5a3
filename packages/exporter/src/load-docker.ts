import * as path from 'node:path/posix';
import {
  MAX_JSON_BYTES,
  MediaType,
  canonicalJson,
  formatReference,
  parseConfig,
  parseManifest,
  parseReference,
  sha256,
  type Descriptor,
  type Digest,
  type ImageStore,
  type Manifest,
} from '@hoist/oci';
import { ExportError } from './errors.js';
import { diffIdOf } from './layer-data.js';
import { resolveMember, type ScannedArchive, type ScannedLayer } from './load-scan.js';
import type { LoadedImage } from './load-types.js';

interface Entry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

function invalid(msg: string, cause?: unknown): ExportError {
  return new ExportError('ARCHIVE_INVALID', msg, cause !== undefined ? { cause } : undefined);
}
function corrupt(msg: string): ExportError {
  return new ExportError('ARCHIVE_CORRUPT', `the archive is corrupt: ${msg}`);
}

function parseEntries(raw: Buffer): Entry[] {
  let v: unknown;
  try {
    v = JSON.parse(raw.toString('utf8'));
  } catch (e) {
    throw invalid('manifest.json is not valid JSON', e);
  }
  const ok = (e: unknown): e is Entry => {
    const x = e as Entry;
    return (
      typeof x === 'object' && x !== null && typeof x.Config === 'string' && Array.isArray(x.Layers) && x.Layers.every((l) => typeof l === 'string') &&
      (x.RepoTags === undefined || x.RepoTags === null || (Array.isArray(x.RepoTags) && x.RepoTags.every((t) => typeof t === 'string')))
    );
  };
  if (!Array.isArray(v) || v.length === 0 || !v.every(ok)) throw invalid('manifest.json is not a list of {Config, RepoTags, Layers}');
  return v;
}

/** The config file an entry names, and its digest (checked against its name when the name is a digest). */
async function readConfig(store: ImageStore, scan: ScannedArchive, name: string): Promise<{ raw: Buffer; digest: Digest }> {
  const p = resolveMember(scan, name);
  let raw = scan.files.get(p);
  const blob = scan.blobs.get(p);
  if (!raw && blob) raw = await store.blobs.getBytes(blob, MAX_JSON_BYTES);
  if (!raw) throw invalid(`manifest.json names config ${name}, which the archive does not hold`);
  const digest = sha256(raw);
  const hex = /^(?:blobs\/sha256\/)?([a-f0-9]{64})(?:\.json)?$/.exec(p)?.[1];
  if (hex && `sha256:${hex}` !== digest) throw corrupt(`config ${name} hashes to ${digest}`);
  return { raw, digest };
}

/** A layer an entry names: a layer tar stored during the scan, or a blob (Docker 25+ archives). */
async function readLayer(store: ImageStore, scan: ScannedArchive, name: string, cache: Map<string, ScannedLayer>): Promise<ScannedLayer> {
  const p = resolveMember(scan, name);
  const layer = scan.layers.get(p) ?? cache.get(p);
  if (layer) return layer;
  const blob = scan.blobs.get(p);
  if (!blob) throw invalid(`manifest.json names layer ${name}, which the archive does not hold`);
  const d0: Descriptor = { mediaType: MediaType.OciLayer, digest: blob.digest, size: blob.size };
  const { diffId, compression } = await diffIdOf(store.blobs, d0);
  const mediaType = compression === 'gzip' ? MediaType.OciLayerGzip : compression === 'zstd' ? MediaType.OciLayerZstd : MediaType.OciLayer;
  const out = { descriptor: { ...d0, mediaType }, diffId };
  cache.set(p, out);
  return out;
}

/**
 * The manifest a hoist-written archive carries beside the classic files (`blobs/sha256/<hex>`),
 * if it describes exactly this config and these layers and all its blobs are here: then the
 * loaded image gets its original digest back.
 */
async function originalManifest(store: ImageStore, scan: ScannedArchive, configDigest: Digest, layers: ScannedLayer[]): Promise<Descriptor | undefined> {
  for (const b of scan.blobs.values()) {
    if (b.size > MAX_JSON_BYTES) continue;
    let m: Manifest;
    let raw: Buffer;
    try {
      raw = await store.blobs.getBytes(b);
      if (raw[0] !== 0x7b) continue;
      m = parseManifest(raw).value;
    } catch {
      continue;
    }
    if (m.config.digest !== configDigest || m.layers.length !== layers.length) continue;
    let same = true;
    for (let i = 0; i < layers.length && same; i++) {
      const want = m.layers[i]!;
      if (want.digest === layers[i]!.descriptor.digest) continue;
      // a blob already in the store (say, the base image's): it must hold this very layer
      same = (await store.blobs.has(want.digest)) && (await diffIdOf(store.blobs, want).then((r) => r.diffId === layers[i]!.diffId, () => false));
    }
    if (same) return { mediaType: m.mediaType ?? MediaType.OciManifest, digest: b.digest, size: b.size };
  }
  return undefined;
}

function names(tags: string[] | null | undefined): string[] {
  const out: string[] = [];
  for (const t of tags ?? []) {
    try {
      const full = formatReference(parseReference(t));
      if (!out.includes(full)) out.push(full);
    } catch (e) {
      throw invalid(`manifest.json tags an image "${t}", which is not a valid reference`, e);
    }
  }
  return out;
}

/** The images of a docker-archive, every layer checked against its config's diff_id. */
export async function loadDockerImages(store: ImageStore, scan: ScannedArchive): Promise<LoadedImage[]> {
  const out: LoadedImage[] = [];
  const cache = new Map<string, ScannedLayer>();
  for (const e of parseEntries(scan.files.get('manifest.json')!)) {
    const config = await readConfig(store, scan, e.Config);
    let diffIds: Digest[];
    try {
      diffIds = parseConfig(config.raw).value.rootfs.diff_ids;
    } catch (err) {
      throw invalid(`config ${e.Config}: ${(err as Error).message}`, err);
    }
    if (diffIds.length !== e.Layers.length) throw corrupt(`${e.Config} lists ${diffIds.length} diff_ids, manifest.json ${e.Layers.length} layers`);
    const layers: ScannedLayer[] = [];
    for (let i = 0; i < e.Layers.length; i++) {
      const l = await readLayer(store, scan, e.Layers[i]!, cache);
      if (l.diffId !== diffIds[i]) throw corrupt(`layer ${i + 1} (${path.normalize(e.Layers[i]!)}) hashes to ${l.diffId}, its config says ${diffIds[i]}`);
      layers.push(l);
    }
    const configDesc = await store.blobs.putBytes(config.raw, MediaType.OciConfig);
    let descriptor = await originalManifest(store, scan, config.digest, layers);
    const exact = descriptor !== undefined;
    if (!descriptor) {
      const manifest: Manifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, config: configDesc, layers: layers.map((l) => l.descriptor) };
      descriptor = await store.blobs.putBytes(canonicalJson(manifest), MediaType.OciManifest);
    }
    out.push({ descriptor, refs: names(e.RepoTags), exact });
  }
  return out;
}
