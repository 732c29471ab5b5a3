import { isIndexMediaType, parseIndex, parseManifest, parseReference, type Descriptor, type Digest, type Manifest, type Reference } from '@hoist/oci';
import { RegistryError, type RegistryClient } from '@hoist/registry-client';

export function atDigest(r: Reference, digest: string): Reference {
  return { registry: r.registry, repository: r.repository, digest: digest as Digest };
}

export interface Reclaimed {
  /** Superseded artifacts deleted. */
  manifests: number;
  /** Blobs unlinked from the repository (bytes as their descriptors say). */
  blobs: number;
  bytes: number;
  /** Superseded artifacts left alone because a tag still points at them. */
  tagged: number;
}

/** A manifest's own blobs (config and layers) by digest. */
function blobsOf(m: Manifest): Map<string, Descriptor> {
  return new Map([m.config, ...m.layers].map((d) => [d.digest, d]));
}

/**
 * What the repository's tags use (manifests, the manifests of indexes, their blobs): never
 * deleted, since another image or cache in the same repository may share a blob.
 */
async function taggedContent(client: RegistryClient, r: Reference, signal?: AbortSignal): Promise<{ manifests: Set<string>; blobs: Set<string> }> {
  const manifests = new Set<string>();
  const blobs = new Set<string>();
  const o = signal ? { signal } : {};
  const visit = async (ref: Reference, depth: number): Promise<void> => {
    const got = await client.getManifest(ref, o);
    manifests.add(got.descriptor.digest);
    if (isIndexMediaType(got.descriptor.mediaType)) {
      if (depth > 0) return;
      for (const c of parseIndex(got.raw).value.manifests) await visit(atDigest(r, c.digest), depth + 1).catch(() => undefined);
      return;
    }
    for (const d of blobsOf(parseManifest(got.raw).value).keys()) blobs.add(d);
  };
  for (const tag of await client.listTags(r, o)) await visit({ registry: r.registry, repository: r.repository, tag }, 0);
  return { manifests, blobs };
}

export interface ReclaimInput {
  ref: string;
  /** The artifact now at `ref`: none of its blobs is deleted. */
  current: Manifest & { digest: string };
  /** Earlier artifacts to delete, with the blobs only they use. */
  superseded: string[];
  signal?: AbortSignal;
}

/**
 * Delete superseded cache artifacts (DELETE /v2/<name>/manifests/<digest>) and then the blobs
 * they used that neither the current artifact nor any tag of the repository uses
 * (DELETE /v2/<name>/blobs/<digest>). A registry that refuses deletes throws UNSUPPORTED
 * (its message names the setting). Bytes on the registry's disk are freed by its own garbage
 * collection (distribution: `registry garbage-collect`).
 */
export async function reclaimSuperseded(client: RegistryClient, x: ReclaimInput): Promise<Reclaimed> {
  const r = parseReference(x.ref);
  const o = x.signal ? { signal: x.signal } : {};
  const tagged = await taggedContent(client, r, x.signal);
  const keep = new Set([...tagged.blobs, ...blobsOf(x.current).keys()]);
  const out: Reclaimed = { manifests: 0, blobs: 0, bytes: 0, tagged: 0 };
  const candidates = new Map<string, Descriptor>();
  for (const d of new Set(x.superseded)) {
    if (d === x.current.digest || tagged.manifests.has(d)) {
      out.tagged++;
      continue;
    }
    const m = await manifestAt(client, atDigest(r, d), x.signal);
    if (!m) continue;
    for (const [digest, desc] of blobsOf(m)) candidates.set(digest, desc);
    if ((await client.deleteManifest(atDigest(r, d), d, o)) === 'deleted') out.manifests++;
  }
  for (const [digest, desc] of candidates) {
    if (keep.has(digest)) continue;
    if ((await client.deleteBlob(r, digest, o)) === 'deleted') {
      out.blobs++;
      out.bytes += desc.size;
    }
  }
  return out;
}

/** A manifest by digest, or undefined when the registry no longer has it. */
export async function manifestAt(client: RegistryClient, ref: Reference, signal?: AbortSignal): Promise<Manifest | undefined> {
  try {
    const got = await client.getManifest(ref, signal ? { signal } : {});
    return parseManifest(got.raw).value;
  } catch (e) {
    if (e instanceof RegistryError && (e.code === 'MANIFEST_UNKNOWN' || e.code === 'NAME_UNKNOWN' || e.status === 404)) return undefined;
    throw e;
  }
}
