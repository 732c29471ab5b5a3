import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import {
  OCI_REF_NAME,
  chainIds,
  REF_ANNOTATION,
  isIndexMediaType,
  parseConfig,
  parseIndex,
  parseManifest,
  type BlobStore,
  type Descriptor,
  type Digest,
} from '@hoist/oci';
import { ExportError } from './errors.js';

/** An `index.json` entry: a tagged image (or an untagged root someone put there). */
export interface IndexEntry {
  ref?: string;
  descriptor: Descriptor;
}

/** Read the store's `index.json` strictly: a store whose roots cannot be read must not be garbage-collected. */
export async function readIndexEntries(ociRoot: string): Promise<IndexEntry[]> {
  let raw: Buffer;
  try {
    raw = await fsp.readFile(path.join(ociRoot, 'index.json'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  try {
    return parseIndex(raw).value.manifests.map((d) => {
      const ref = d.annotations?.[REF_ANNOTATION] ?? d.annotations?.[OCI_REF_NAME];
      return ref !== undefined ? { ref, descriptor: d } : { descriptor: d };
    });
  } catch (e) {
    throw new ExportError('STORE_CORRUPT', `${path.join(ociRoot, 'index.json')} is unreadable: ${(e as Error).message}`, {
      cause: e,
      hint: 'run `hoist fsck`; restore index.json (or delete it and re-tag or re-pull the images) before pruning',
    });
  }
}

/** A problem met while walking an image. */
export interface WalkProblem {
  ref?: string;
  digest: Digest;
  what: 'manifest' | 'index' | 'config';
  message: string;
}

/** What the images in `index.json` hold on to. */
export interface Reachable {
  blobs: Set<Digest>;
  /** diff_ids of every image (their snapshots are kept). */
  diffIds: Set<Digest>;
  /** ChainIDs of every prefix of every image's layers (the copy driver's flattened trees). */
  chainIds: Set<Digest>;
  /** Manifests, indexes and configs of those images, with their descriptors (for fsck). */
  manifests: Array<{ ref?: string; descriptor: Descriptor; layers: Descriptor[]; config: Descriptor; diffIds?: Digest[] }>;
  /** Index children not in the store (platforms never pulled): not an error. */
  absentChildren: number;
  problems: WalkProblem[];
}

/**
 * Walk the images in `index.json`: indexes -> their manifests that are present, manifests ->
 * config + layers, configs -> diff_ids. Manifests, indexes and configs are read verified; a
 * blob that cannot be read is a problem (its children are unknown).
 */
export async function walkImages(blobs: BlobStore, entries: readonly IndexEntry[]): Promise<Reachable> {
  const out: Reachable = { blobs: new Set(), diffIds: new Set(), chainIds: new Set(), manifests: [], absentChildren: 0, problems: [] };
  const visited = new Set<string>();
  const visit = async (d: Descriptor, ref: string | undefined, depth: number): Promise<void> => {
    out.blobs.add(d.digest);
    if (visited.has(d.digest) || depth > 4) return;
    visited.add(d.digest);
    const problem = (what: WalkProblem['what'], digest: Digest, e: unknown): void => {
      out.problems.push({ ...(ref !== undefined ? { ref } : {}), digest, what, message: (e as Error).message });
    };
    if (isIndexMediaType(d.mediaType)) {
      let children: Descriptor[];
      try {
        children = parseIndex(await blobs.getBytes(d)).value.manifests;
      } catch (e) {
        problem('index', d.digest, e);
        return;
      }
      let present = 0;
      for (const c of children) {
        if (!(await blobs.has(c.digest))) {
          out.absentChildren++;
          continue;
        }
        present++;
        await visit(c, ref, depth + 1);
      }
      if (present === 0) problem('index', d.digest, new Error(`none of the ${children.length} manifests of index ${d.digest} is in the store`));
      return;
    }
    let layers: Descriptor[];
    let config: Descriptor;
    try {
      const m = parseManifest(await blobs.getBytes(d)).value;
      layers = m.layers;
      config = m.config;
    } catch (e) {
      problem('manifest', d.digest, e);
      return;
    }
    out.blobs.add(config.digest);
    for (const l of layers) out.blobs.add(l.digest);
    const entry: Reachable['manifests'][number] = { ...(ref !== undefined ? { ref } : {}), descriptor: d, layers, config };
    out.manifests.push(entry);
    try {
      const cfg = parseConfig(await blobs.getBytes(config)).value;
      entry.diffIds = cfg.rootfs.diff_ids;
      for (const id of cfg.rootfs.diff_ids) out.diffIds.add(id);
      for (const c of chainIds(cfg.rootfs.diff_ids)) out.chainIds.add(c);
    } catch (e) {
      problem('config', config.digest, e);
    }
  };
  for (const e of entries) await visit(e.descriptor, e.ref, 0);
  return out;
}
