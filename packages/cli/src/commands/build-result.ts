import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { BuildResult, MultiBuildResult } from '@hoist/builder';
import type { Descriptor } from '@hoist/oci';
import { UsageError } from '../errors.js';

/**
 * The image ID as docker and buildx print it (`-q`, `--iidfile`): the config's digest; for a
 * multi-platform build the index's digest (BuildKit reports no config digest for an index).
 */
export function imageId(result: Pick<BuildResult, 'manifest'> | Pick<MultiBuildResult, 'descriptor' | 'platforms'>): string {
  return 'platforms' in result ? result.descriptor.digest : result.manifest.config.digest;
}

/** buildx removes a stale iidfile before it builds, so a failed build never leaves an old ID behind. */
export async function clearIidFile(file: string | undefined): Promise<void> {
  if (file) await fsp.rm(file, { force: true });
}

/** `--iidfile FILE`: the image ID, no newline (as buildx writes it). */
export async function writeIidFile(file: string, result: Parameters<typeof imageId>[0]): Promise<void> {
  await writeAtomic(file, imageId(result));
}

/**
 * `--metadata-file FILE`: the keys buildx writes for an image build (sorted, as Go marshals a
 * map; two-space indent): the manifest digest, the config digest, the manifest's descriptor
 * with its platform, the names it got and a build reference.
 */
export function buildMetadata(result: Pick<BuildResult, 'descriptor' | 'manifest' | 'config'>, o: { names: readonly string[]; descriptorAnnotations?: Record<string, string>; attested?: Descriptor }): Record<string, unknown> {
  if (o.attested) return attestedMetadata(result, o.attested, o.names);
  const c = result.config;
  const d: Descriptor = result.descriptor;
  const annotations = { 'config.digest': result.manifest.config.digest, ...(c.created ? { 'org.opencontainers.image.created': c.created } : {}), ...(o.descriptorAnnotations ?? {}) };
  const platform = { architecture: c.architecture, os: c.os, ...(c.variant ? { variant: c.variant } : {}) };
  return metadataKeys({ configDigest: result.manifest.config.digest, descriptor: { mediaType: d.mediaType, digest: d.digest, size: d.size, annotations, platform }, digest: d.digest, names: o.names });
}

/**
 * With attestations the result is an image index (the image and its attestation manifest):
 * buildx then reports the index as `containerimage.digest`/`containerimage.descriptor`, and
 * the image's config digest.
 */
function attestedMetadata(result: Pick<BuildResult, 'manifest'>, index: Descriptor, names: readonly string[]): Record<string, unknown> {
  return metadataKeys({ configDigest: result.manifest.config.digest, descriptor: { mediaType: index.mediaType, digest: index.digest, size: index.size }, digest: index.digest, names });
}

/**
 * `--metadata-file FILE` for a multi-platform build, as buildx writes it for an index: the
 * index's digest and descriptor (with its creation time, no platform) and no config digest.
 */
export function indexMetadata(result: Pick<MultiBuildResult, 'descriptor' | 'platforms'>, o: { names: readonly string[] }): Record<string, unknown> {
  const d = result.descriptor;
  const created = result.platforms.map((p) => p.result.config.created).find((c) => c !== undefined);
  const descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size, ...(created ? { annotations: { 'org.opencontainers.image.created': created } } : {}) };
  return metadataKeys({ descriptor, digest: d.digest, names: o.names });
}

/** The metadata file's keys in buildx's (sorted) order; the config digest only for one image. */
function metadataKeys(o: { configDigest?: string; descriptor: Record<string, unknown>; digest: string; names: readonly string[] }): Record<string, unknown> {
  const meta: Record<string, unknown> = { 'buildx.build.ref': `hoist/hoist0/${buildRef()}` };
  if (o.configDigest) meta['containerimage.config.digest'] = o.configDigest;
  meta['containerimage.descriptor'] = o.descriptor;
  meta['containerimage.digest'] = o.digest;
  if (o.names.length > 0) meta['image.name'] = o.names.join(',');
  return meta;
}

export async function writeMetadataFile(file: string, meta: Record<string, unknown>): Promise<void> {
  await writeAtomic(file, JSON.stringify(meta, null, 2));
}

/** A BuildKit-style build reference: 25 lower-case base-36 characters. */
function buildRef(): string {
  const alphabet = '0123456789abcdefghijklmnopqrstuvwxyz';
  return [...randomBytes(25)].map((b) => alphabet[b % 36]).join('');
}

/** A result file's directory must exist (as buildx requires): checked before the build starts. */
export async function checkResultFile(flag: string, file: string | undefined): Promise<void> {
  if (!file) return;
  const dir = path.dirname(path.resolve(file));
  const st = await fsp.stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) throw new UsageError(`${flag} ${file}: directory ${dir} does not exist; create it first`);
}

/** Write next to the target and rename over it. */
async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await fsp.writeFile(tmp, text, { mode: 0o644 });
  await fsp.rename(tmp, file);
}
