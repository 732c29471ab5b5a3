/**
 * `hoist manifest create -t REF SRC…` (buildx's `imagetools create`): merge per-platform images
 * already pushed (each built on its own runner and pushed by digest) into one image index,
 * written to the registry without pulling a layer: each source's manifest is read, its config
 * gives the platform, the index is put by tag. Sources that are indexes contribute their
 * manifests. Sources must be in the target's repository (the manifests an index names must be
 * there; copying across repositories is not done here).
 */
import { canonicalJson, formatReference, isIndexMediaType, MediaType, parseConfig, parseIndex, parseManifest, parseReference, type Descriptor, type Platform } from '@hoist/oci';
import type { RegistryClient } from '@hoist/registry-client';
import { UsageError } from '../errors.js';
import { makeRegistryClient } from '../registry.js';

export async function manifestCreateCommand(sources: string[], o: { tag: string; dryRun?: boolean }, signal: AbortSignal): Promise<number> {
  if (sources.length === 0) throw new UsageError('manifest create needs at least one source image (REPO@sha256:… or REPO:TAG)');
  const target = parseReference(o.tag);
  for (const s of sources) {
    const r = parseReference(s);
    if (r.registry !== target.registry || r.repository !== target.repository) {
      throw new UsageError(`${s}: sources must be in ${target.registry}/${target.repository} (the index can only name manifests of its own repository); push it there by digest first`);
    }
  }
  const client = makeRegistryClient('quiet');
  const manifests: Descriptor[] = [];
  for (const s of sources) manifests.push(...(await describe(client, s, signal)));
  const seen = new Set<string>();
  for (const m of manifests) {
    const p = m.platform ? `${m.platform.os}/${m.platform.architecture}${m.platform.variant ? `/${m.platform.variant}` : ''}` : m.digest;
    if (seen.has(p)) throw new UsageError(`two sources are for ${p}; give one image per platform`);
    seen.add(p);
  }
  const index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests };
  const raw = canonicalJson(index);
  if (o.dryRun) {
    process.stdout.write(raw.toString() + '\n');
    return 0;
  }
  const d = await client.putManifest(formatReference(target), raw, MediaType.OciIndex, { signal });
  process.stderr.write(`pushed index ${formatReference(target)} (${manifests.length} manifests)\n`);
  process.stdout.write(`${d.digest}\n`);
  return 0;
}

/** The descriptors (with platform) a source contributes: itself, or an index's manifests. */
async function describe(client: RegistryClient, source: string, signal: AbortSignal): Promise<Descriptor[]> {
  const m = await client.getManifest(source, { signal });
  if (isIndexMediaType(m.descriptor.mediaType)) return parseIndex(m.raw).value.manifests.filter((x) => x.platform?.architecture !== 'unknown');
  const manifest = parseManifest(m.raw).value;
  const config = parseConfig(await client.fetchBlobBytes(source, manifest.config, { signal, max: 4 << 20 })).value;
  const platform: Platform = { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) };
  return [{ mediaType: m.descriptor.mediaType, digest: m.descriptor.digest, size: m.descriptor.size, platform }];
}
