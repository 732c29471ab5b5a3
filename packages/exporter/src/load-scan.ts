import { createHash } from 'node:crypto';
import * as path from 'node:path/posix';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestingStream, MAX_JSON_BYTES, MediaType, OciError, isDigest, sniffCompression, type BlobStore, type Descriptor, type Digest } from '@hoist/oci';
import { ByteSource, ParallelGzip, SnapshotError, decompress, readTar } from '@hoist/snapshotter';
import { ExportError, throwIfAborted } from './errors.js';
import { diffIdOf } from './layer-data.js';

/** A layer file of a docker-archive, stored as a blob, with its diff_id. */
export interface ScannedLayer {
  descriptor: Descriptor;
  diffId: Digest;
}

/** What a pass over an archive found: small metadata files in memory, everything else in the store. */
export interface ScannedArchive {
  /** Small metadata files (`manifest.json`, `index.json`, configs, ...), by path. */
  files: Map<string, Buffer>;
  /** `blobs/sha256/<hex>` files, stored (verified against their names). */
  blobs: Map<string, { digest: Digest; size: number }>;
  /** Other regular files (docker-archive layer tars), stored as gzip layer blobs. */
  layers: Map<string, ScannedLayer>;
  /** Symlinks and hard links (docker save links repeated layers), path -> target path. */
  links: Map<string, string>;
}

const METADATA = new Set(['manifest.json', 'index.json', 'oci-layout', 'repositories']);
const MAX_METADATA_TOTAL = 256 * 1024 * 1024;

function isMetadata(name: string): boolean {
  const base = path.basename(name);
  return METADATA.has(name) || base === 'json' || base === 'VERSION' || name.endsWith('.json');
}

/** A member name as a clean relative path; anything escaping the archive is refused. */
export function cleanName(raw: string): string {
  const n = path.normalize(raw.replace(/^(\.\/)+/, '')).replace(/\/+$/, '');
  if (n === '' || n === '.') return '';
  if (path.isAbsolute(n) || n === '..' || n.startsWith('../')) throw new ExportError('ARCHIVE_INVALID', `archive member "${raw}" points outside the archive`);
  return n;
}

/** Follow links between archive members (at most 16 hops). */
export function resolveMember(scan: ScannedArchive, name: string): string {
  let n = cleanName(name);
  for (let i = 0; i < 16 && scan.links.has(n); i++) n = scan.links.get(n)!;
  return n;
}

async function* prepend(head: Buffer[], rest: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  yield* head;
  for (;;) {
    const r = await rest.next();
    if (r.done) return;
    yield r.value;
  }
}

/**
 * Store a file that should be a layer tar. Uncompressed (the docker-archive norm): hashed for
 * its diff_id and gzip-compressed in the same pass with hoist's reproducible gzip — so layers
 * hoist made come back as the very same blobs. Already compressed: stored as it is, then
 * decompressed once for its diff_id.
 */
async function storeLayerFile(blobs: BlobStore, body: AsyncGenerator<Buffer>, signal?: AbortSignal): Promise<ScannedLayer> {
  const it = body[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let len = 0;
  while (len < 4) {
    const r = await it.next();
    if (r.done) break;
    head.push(r.value);
    len += r.value.length;
  }
  const kind = sniffCompression(Buffer.concat(head));
  const src = Readable.from(prepend(head, it), { objectMode: false });
  const sig = signal ? { signal } : {};
  if (kind !== 'none') {
    const put = await blobs.put(src, sig);
    const descriptor: Descriptor = { mediaType: kind === 'gzip' ? MediaType.OciLayerGzip : MediaType.OciLayerZstd, digest: put.digest, size: put.size };
    return { descriptor, diffId: (await diffIdOf(blobs, descriptor, signal)).diffId };
  }
  const diff = new DigestingStream();
  const blob = await blobs.write((out) => pipeline(src, diff, new ParallelGzip(), out, sig), { prefix: 'load' });
  return { descriptor: { mediaType: MediaType.OciLayerGzip, digest: blob.digest, size: blob.size }, diffId: diff.digest };
}

function archiveError(e: unknown): unknown {
  if (e instanceof SnapshotError && (e.code === 'LAYER_INVALID' || e.code === 'LAYER_UNSUPPORTED' || e.code === 'LAYER_TOO_LARGE')) {
    return new ExportError('ARCHIVE_INVALID', `not a readable archive: ${e.message.replace(/layer tar/g, 'archive')}`, { cause: e });
  }
  if (e instanceof OciError && (e.code === 'DIGEST_MISMATCH' || e.code === 'SIZE_MISMATCH' || e.code === 'TOO_LARGE')) {
    return new ExportError('ARCHIVE_CORRUPT', `the archive is corrupt: ${e.message}`, { cause: e });
  }
  return e;
}

/**
 * One pass over an archive (plain, gzip or zstd): every blob goes into the store as it streams
 * by, verified (`blobs/sha256/<hex>` against its name; layer tars hashed for their diff_id);
 * small metadata is kept in memory. Nothing is tagged here.
 */
export async function scanArchive(blobs: BlobStore, input: AsyncIterable<Buffer>, opts: { signal?: AbortSignal } = {}): Promise<ScannedArchive> {
  const scan: ScannedArchive = { files: new Map(), blobs: new Map(), layers: new Map(), links: new Map() };
  let metadataBytes = 0;
  try {
    const { stream } = await decompress(input);
    const src = new ByteSource(stream as AsyncIterable<Buffer>, Number.MAX_SAFE_INTEGER);
    let entries = 0;
    for await (const e of readTar(src, { maxEntries: 1_000_000 })) {
      throwIfAborted(opts.signal);
      entries++;
      const name = cleanName(e.name);
      if (name === '') continue;
      if (e.type === 'symlink') {
        scan.links.set(name, cleanName(path.join(path.dirname(name), e.linkname)));
        continue;
      }
      if (e.type === 'link') {
        scan.links.set(name, cleanName(e.linkname));
        continue;
      }
      if (e.type !== 'file') continue;
      const blob = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(name);
      if (blob) {
        const digest = `sha256:${blob[1]}`;
        if (!isDigest(digest)) continue;
        if (!(await blobs.has(digest))) {
          await blobs.put(Readable.from(e.body(), { objectMode: false }), { expected: { digest, size: e.size }, ...(opts.signal ? { signal: opts.signal } : {}) });
        } else {
          // already stored (and verified when it was): the archive's copy must still match its name
          const h = createHash('sha256');
          for await (const b of e.body()) h.update(b);
          const got = `sha256:${h.digest('hex')}`;
          if (got !== digest) throw new ExportError('ARCHIVE_CORRUPT', `the archive is corrupt: ${name} does not hash to its name (got ${got})`);
        }
        scan.blobs.set(name, { digest, size: e.size });
        continue;
      }
      if (isMetadata(name)) {
        if (e.size > MAX_JSON_BYTES) throw new ExportError('ARCHIVE_INVALID', `${name} is ${e.size} bytes, over the ${MAX_JSON_BYTES}-byte limit for metadata`);
        metadataBytes += e.size;
        if (metadataBytes > MAX_METADATA_TOTAL) throw new ExportError('ARCHIVE_INVALID', `the archive holds more than ${MAX_METADATA_TOTAL} bytes of metadata files`);
        const parts: Buffer[] = [];
        for await (const b of e.body()) parts.push(b);
        scan.files.set(name, Buffer.concat(parts));
        continue;
      }
      scan.layers.set(name, await storeLayerFile(blobs, e.body(), opts.signal));
    }
    if (entries === 0) throw new ExportError('ARCHIVE_INVALID', 'the archive is empty');
  } catch (e) {
    throw archiveError(e);
  }
  return scan;
}
