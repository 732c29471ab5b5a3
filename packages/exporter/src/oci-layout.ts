import { randomBytes } from 'node:crypto';
import { createWriteStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  MediaType,
  OCI_REF_NAME,
  REF_ANNOTATION,
  digestHex,
  parseIndex,
  withFileLock,
  writeFileAtomic,
  type Descriptor,
  type ImageIndex,
} from '@hoist/oci';
import { openDirTarget, withTarget } from './dest.js';
import { ExportError, throwIfAborted } from './errors.js';
import { exportBlobs, type ExportBlob, type ExportImage } from './images.js';
import type { TarSink } from './tar-sink.js';

export const OCI_LAYOUT_FILE = JSON.stringify({ imageLayoutVersion: '1.0.0' });

/**
 * The `index.json` entries for images: one per name, annotated with the full reference as
 * `org.opencontainers.image.ref.name` (what `skopeo copy oci-archive:FILE:REF` matches) and
 * `io.containerd.image.name` (what containerd and `hoist load` tag with); one plain entry for
 * an image without a name.
 */
export function indexEntries(images: readonly ExportImage[]): Descriptor[] {
  const out: Descriptor[] = [];
  for (const img of images) {
    const d: Descriptor = { mediaType: img.descriptor.mediaType, digest: img.descriptor.digest, size: img.descriptor.size };
    if (img.refs.length === 0) out.push(d);
    for (const ref of img.refs) out.push({ ...d, annotations: { [OCI_REF_NAME]: ref, [REF_ANNOTATION]: ref } });
  }
  return out;
}

function indexJson(manifests: Descriptor[]): Buffer {
  const idx: ImageIndex = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests };
  return Buffer.from(JSON.stringify(idx, null, 2) + '\n');
}

/** Every distinct blob of the images, in a stable order (configs and layers first). */
function allBlobs(images: readonly ExportImage[]): ExportBlob[] {
  const seen = new Set<string>();
  const out: ExportBlob[] = [];
  for (const img of images) {
    for (const b of exportBlobs(img)) {
      if (seen.has(b.descriptor.digest)) continue;
      seen.add(b.descriptor.digest);
      out.push(b);
    }
  }
  return out;
}

/**
 * An OCI image layout as a tar (what `skopeo copy oci-archive:FILE` reads). Layers are read from
 * wherever they are (the store, a registry, an imported cache), each verified as it is read.
 */
export async function writeOciArchive(images: readonly ExportImage[], sink: TarSink, opts: { signal?: AbortSignal } = {}): Promise<void> {
  const sig = opts.signal ? { signal: opts.signal } : {};
  await sink.file('oci-layout', OCI_LAYOUT_FILE);
  for (const b of allBlobs(images)) {
    throwIfAborted(opts.signal);
    await sink.stream(`blobs/sha256/${digestHex(b.descriptor.digest)}`, b.descriptor.size, await b.open(sig));
  }
  await sink.file('index.json', indexJson(indexEntries(images)));
  await sink.finish();
}

/** Copy a blob into a layout directory: temp file beside it, verified while read, renamed. */
async function copyBlob(b: ExportBlob, blobsDir: string, signal?: AbortSignal): Promise<void> {
  const d = b.descriptor;
  const dest = path.join(blobsDir, digestHex(d.digest));
  if (await fsp.stat(dest).then((s) => s.size === d.size, () => false)) return;
  const tmp = path.join(blobsDir, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    await pipeline(await b.open(signal ? { signal } : {}), createWriteStream(tmp, { flags: 'wx', mode: 0o644 }), signal ? { signal } : {});
    await fsp.rename(tmp, dest);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
}

async function isLayout(dir: string): Promise<boolean> {
  return fsp.access(path.join(dir, 'oci-layout')).then(() => true, () => false);
}

/**
 * An OCI image layout directory (what `skopeo copy oci:DIR` and `umoci` read). A new (or empty)
 * directory is filled in a temp sibling and renamed into place; an existing layout gets the
 * blobs added and its `index.json` updated atomically (entries with the same name replaced),
 * as skopeo does. Any other non-empty directory is refused.
 */
export async function writeOciDir(images: readonly ExportImage[], dest: string, opts: { signal?: AbortSignal } = {}): Promise<string> {
  const abs = path.resolve(dest);
  if (await isLayout(abs)) {
    const blobsDir = path.join(abs, 'blobs', 'sha256');
    await fsp.mkdir(blobsDir, { recursive: true });
    for (const b of allBlobs(images)) await copyBlob(b, blobsDir, opts.signal);
    const added = indexEntries(images);
    await withFileLock(path.join(abs, 'index.json.lock'), async () => {
      let current: Descriptor[] = [];
      const raw = await fsp.readFile(path.join(abs, 'index.json')).catch(() => undefined);
      if (raw) {
        try {
          current = parseIndex(raw).value.manifests;
        } catch (e) {
          throw new ExportError('DEST_EXISTS', `${dest}/index.json is not a valid OCI index; not touching it`, { cause: e });
        }
      }
      const names = new Set(added.map((d) => d.annotations?.[OCI_REF_NAME]).filter((n) => n !== undefined));
      const kept = current.filter((d) => {
        const n = d.annotations?.[OCI_REF_NAME];
        if (n !== undefined) return !names.has(n);
        return !added.some((a) => a.digest === d.digest && !a.annotations);
      });
      await writeFileAtomic(path.join(abs, 'index.json'), indexJson([...kept, ...added]));
    });
    return abs;
  }
  return withTarget(await openDirTarget(abs), async (t) => {
    const blobsDir = path.join(t.dir, 'blobs', 'sha256');
    await fsp.mkdir(blobsDir, { recursive: true });
    await fsp.chmod(t.dir, 0o755);
    for (const b of allBlobs(images)) await copyBlob(b, blobsDir, opts.signal);
    await fsp.writeFile(path.join(t.dir, 'oci-layout'), OCI_LAYOUT_FILE);
    await fsp.writeFile(path.join(t.dir, 'index.json'), indexJson(indexEntries(images)));
    return t.dest;
  });
}
