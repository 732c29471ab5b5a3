import {
  OCI_REF_NAME,
  REF_ANNOTATION,
  formatReference,
  isIndexMediaType,
  isManifestMediaType,
  parseConfig,
  parseIndex,
  parseManifest,
  parseReference,
  type Descriptor,
  type ImageStore,
} from '@hoist/oci';
import { ExportError } from './errors.js';
import type { ScannedArchive } from './load-scan.js';
import type { LoadedImage } from './load-types.js';

function corrupt(msg: string, cause?: unknown): ExportError {
  return new ExportError('ARCHIVE_CORRUPT', msg, cause !== undefined ? { cause } : undefined);
}

async function needBlob(store: ImageStore, d: Descriptor, what: string): Promise<void> {
  const st = await store.blobs.stat(d.digest);
  if (!st) throw corrupt(`the archive lacks ${what} ${d.digest}`);
  if (st.size !== d.size) throw corrupt(`${what} ${d.digest} is ${st.size} bytes, its descriptor says ${d.size}`);
}

/** Check that a manifest and everything it names landed (and parse: configs must be configs). */
async function checkManifest(store: ImageStore, d: Descriptor): Promise<void> {
  await needBlob(store, d, 'manifest');
  let m;
  try {
    m = parseManifest(await store.blobs.getBytes(d)).value;
    await needBlob(store, m.config, 'config');
    const cfg = parseConfig(await store.blobs.getBytes(m.config)).value;
    if (cfg.rootfs.diff_ids.length !== m.layers.length) throw corrupt(`image ${d.digest}: ${m.layers.length} layers but ${cfg.rootfs.diff_ids.length} diff_ids in its config`);
  } catch (e) {
    if (e instanceof ExportError) throw e;
    throw corrupt(`manifest ${d.digest}: ${(e as Error).message}`, e);
  }
  for (const l of m.layers) await needBlob(store, l, 'layer');
}

/** Check an index: its manifests that are present must be complete, and at least one must be. */
async function checkIndex(store: ImageStore, d: Descriptor, depth = 0): Promise<void> {
  if (depth > 4) throw corrupt(`index ${d.digest} nests too deep`);
  await needBlob(store, d, 'index');
  let children: Descriptor[];
  try {
    children = parseIndex(await store.blobs.getBytes(d)).value.manifests;
  } catch (e) {
    throw corrupt(`index ${d.digest}: ${(e as Error).message}`, e);
  }
  let present = 0;
  for (const c of children) {
    if (!(await store.blobs.has(c.digest))) continue;
    present++;
    if (isIndexMediaType(c.mediaType)) await checkIndex(store, c, depth + 1);
    else if (isManifestMediaType(c.mediaType)) await checkManifest(store, c);
  }
  if (present === 0) throw corrupt(`the archive holds none of the manifests of index ${d.digest}`);
}

/**
 * The name of an `index.json` entry: `io.containerd.image.name`, else
 * `org.opencontainers.image.ref.name` when it is a full reference (a bare tag such as `latest`
 * names no repository, so it tags nothing).
 */
export function entryName(d: Descriptor): string | undefined {
  const raw = d.annotations?.[REF_ANNOTATION] ?? d.annotations?.[OCI_REF_NAME];
  if (raw === undefined) return undefined;
  if (!d.annotations?.[REF_ANNOTATION] && !/[/:]/.test(raw)) return undefined;
  try {
    return formatReference(parseReference(raw));
  } catch (e) {
    throw new ExportError('ARCHIVE_INVALID', `index.json names an image "${raw}", which is not a valid reference`, { cause: e });
  }
}

/** The images of an OCI layout archive whose blobs are all in the store now. */
export async function loadOciImages(store: ImageStore, scan: ScannedArchive): Promise<LoadedImage[]> {
  let entries: Descriptor[];
  try {
    entries = parseIndex(scan.files.get('index.json')!).value.manifests;
  } catch (e) {
    throw new ExportError('ARCHIVE_INVALID', `index.json: ${(e as Error).message}`, { cause: e });
  }
  const byDigest = new Map<string, LoadedImage>();
  for (const d of entries) {
    if (isIndexMediaType(d.mediaType)) await checkIndex(store, d);
    else if (isManifestMediaType(d.mediaType)) await checkManifest(store, d);
    else throw new ExportError('ARCHIVE_INVALID', `index.json lists ${d.digest} of media type ${d.mediaType}, not an image`);
    const img = byDigest.get(d.digest) ?? { descriptor: { mediaType: d.mediaType, digest: d.digest, size: d.size }, refs: [], exact: true };
    byDigest.set(d.digest, img);
    const name = entryName(d);
    if (name && !img.refs.includes(name)) img.refs.push(name);
  }
  if (byDigest.size === 0) throw new ExportError('ARCHIVE_INVALID', 'index.json lists no images');
  return [...byDigest.values()];
}
