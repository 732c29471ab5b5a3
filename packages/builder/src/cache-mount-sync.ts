import { createHash } from 'node:crypto';
import { withFileLock, type BlobStore, type Descriptor } from '@hoist/oci';
import { applyLayer, walkTree, writeLayer, type LayerEntry } from '@hoist/snapshotter';
import { LOCK_WAIT_MS } from './cache-mounts.js';

type Node = Extract<LayerEntry, { kind: 'node' }>;

/** A chunk is cut after a file whose name hashes to a boundary, once it holds this much... */
const MIN_CHUNK = 1024 * 1024;
/** ...and always once it holds this much. */
const MAX_CHUNK = 16 * 1024 * 1024;
/** One name in this many is a boundary (past MIN_CHUNK): chunks of ~MIN_CHUNK + 16 files. */
const BOUNDARY_MASK = 0x0f;
const HEADER = 512;

/** The exported contents of a cache mount: the directories' layer, then the chunks. */
export interface PackedMount {
  layers: Descriptor[];
  files: number;
  bytes: number;
}

function entryBytes(e: Node): number {
  return HEADER + (e.st.isFile() ? Number(e.st.size) : 0);
}

function isBoundary(name: string): boolean {
  return (createHash('sha256').update(name).digest()[0]! & BOUNDARY_MASK) === 0;
}

/**
 * Cut a cache mount's files (in walk order) into chunks at content-defined boundaries: a chunk
 * ends after a file whose name is a boundary once it holds MIN_CHUNK bytes, or at MAX_CHUNK.
 * Adding, removing or changing one file changes the chunk it is in (and at most the next one,
 * until the boundaries line up again); every other chunk stays byte-identical.
 */
export function chunkEntries<T extends { name: string; bytes: number }>(entries: T[]): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let bytes = 0;
  for (const e of entries) {
    cur.push(e);
    bytes += e.bytes;
    if (bytes >= MAX_CHUNK || (bytes >= MIN_CHUNK && isBoundary(e.name))) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/** The entry with a link count of 1: a chunk never holds a hard link to a member of another chunk. */
function unlinked(e: Node): Node {
  return { ...e, st: Object.create(e.st, { nlink: { value: 1n } }) as Node['st'] };
}

async function* each<T>(items: T[]): AsyncGenerator<T> {
  yield* items;
}

/**
 * Write a cache mount directory as layers into `blobs`: first its directories (mtimes zeroed,
 * so the layer changes only when the set of directories does), then its files and symlinks in
 * content-defined chunks (see chunkEntries). Files keep their mtimes (caches such as Go's trim
 * by them); hard links become copies; sockets, FIFOs and devices are left out.
 */
export async function packCacheMount(dir: string, blobs: BlobStore, signal?: AbortSignal): Promise<PackedMount> {
  const dirs: Node[] = [];
  const files: Array<Node & { bytes: number }> = [];
  for await (const e of walkTree(dir, new Map(), { overlay: false, ...(signal ? { signal } : {}) })) {
    if (e.kind !== 'node') continue;
    if (e.st.isDirectory()) dirs.push(e);
    else if (e.st.isFile() || e.st.isSymbolicLink()) files.push({ ...unlinked(e), bytes: entryBytes(e) });
  }
  const opts = signal ? { signal } : {};
  const layers = [(await writeLayer(blobs, each(dirs), { ...opts, sourceDateEpoch: 0 })).descriptor];
  for (const chunk of chunkEntries(files)) {
    const nodes: Node[] = chunk.map(({ bytes: _b, ...n }) => n);
    layers.push((await writeLayer(blobs, each(nodes), opts)).descriptor);
  }
  const bytes = files.reduce((a, f) => a + (f.st.isFile() ? Number(f.st.size) : 0), 0);
  return { layers, files: files.length, bytes };
}

/**
 * Rebuild a cache mount in the empty directory `dir` from its exported layers, in order. Each
 * layer goes through the safe unpacker (an imported cache is as hostile as any layer).
 */
export async function unpackCacheMount(dir: string, layers: Descriptor[], blobs: BlobStore, signal?: AbortSignal): Promise<void> {
  for (const l of layers) await applyLayer(blobs.get(l), dir, { whiteouts: 'flat', ...(signal ? { signal } : {}) });
}

/**
 * Pack a cache mount of this store for export, holding its lock (as a `sharing=locked` step
 * does): a locked step of another build on this store never leaves it half-written in the export.
 */
export async function snapshotCacheMount(dir: string, blobs: BlobStore, signal?: AbortSignal): Promise<PackedMount> {
  return withFileLock(`${dir}.lock`, () => packCacheMount(dir, blobs, signal), LOCK_WAIT_MS);
}
