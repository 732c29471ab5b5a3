import type { Descriptor, ImageStore } from '@hoist/oci';
import { UsageError } from './errors.js';

/** A stored image found by name or ID: the names it has (an ID may stand for several). */
export interface FoundImage {
  descriptor: Descriptor;
  /** Full references of the image; `[name]` when found by name. */
  refs: string[];
}

const ID = /^(?:sha256:)?([0-9a-f]{4,64})$/;

/**
 * Find an image as docker does: by name first, else by the ID `hoist images` prints (the start
 * of the manifest digest, 4 to 64 hex digits, with or without `sha256:`). Unknown or ambiguous:
 * a usage error (exit 2) that says what to do.
 */
export async function findImage(store: ImageStore, name: string): Promise<FoundImage> {
  const byName = await store.resolve(name).catch(() => undefined);
  if (byName) return { descriptor: byName, refs: [name] };
  const m = ID.exec(name);
  if (m) {
    const hits = (await store.list()).filter((i) => i.descriptor.digest.slice('sha256:'.length).startsWith(m[1]!));
    const digests = new Set(hits.map((h) => h.descriptor.digest));
    if (digests.size > 1) throw new UsageError(`image ID ${name} is ambiguous: it starts ${digests.size} images' digests; give more digits`);
    if (hits.length > 0) return { descriptor: hits[0]!.descriptor, refs: hits.map((h) => h.ref) };
  }
  throw new UsageError(`image ${name} is not in the store; see \`hoist images\``);
}
