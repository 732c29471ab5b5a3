import * as path from 'node:path';
import type { Descriptor, ImageStore, Layer, Platform } from '@hoist/oci';
import type { Snapshotter } from '@hoist/snapshotter';
import { ExportError, parseOutputSpecs, pushes, writeOutput, writesStdout, type AttestedImage, type OutputSpec } from '@hoist/exporter';
import { UsageError } from '../errors.js';

/** The `outputs` of a build (`--output` values), parsed before the build so that mistakes cost nothing. */
export interface BuildOutputs {
  specs: OutputSpec[];
  /** `type=registry` (or `type=image,push=true`): push as `push: true` does. */
  push: boolean;
  /** An output writes to stdout: the digest must not go there. */
  stdout: boolean;
}

/** Parse output specs (`type=oci,dest=FILE`, …); a bad spec is a UsageError. */
export function parseBuildOutputs(values: readonly string[] | undefined): BuildOutputs {
  let specs: OutputSpec[];
  try {
    specs = parseOutputSpecs(values ?? [], '--output');
  } catch (e) {
    if (e instanceof ExportError) throw new UsageError(e.message);
    throw e;
  }
  if (specs.some(writesStdout) && process.stdout.isTTY) {
    throw new UsageError('--output dest=- writes an archive to stdout, which is a terminal; redirect stdout or give dest=FILE');
  }
  return { specs, push: specs.some(pushes), stdout: specs.some(writesStdout) };
}

export interface BuildOutputContext {
  store: ImageStore;
  snapshotter: Snapshotter;
  descriptor: Descriptor;
  /** The image's layers, wherever each blob is. */
  layers?: readonly Layer[];
  /** Full references the build tagged. */
  tags: readonly string[];
  platform?: Platform;
  /** A multi-platform build's platforms (the descriptor is their index): type=local writes one folder each. */
  platforms?: Platform[];
  sourceDateEpoch?: number;
  /** The index with the build's attestations: what `type=oci` writes (BuildKit's layout). */
  attested?: Descriptor;
  /** Statements to write next to `type=local` root filesystems (`provenance.json`, `sbom.spdx.json`). */
  localAttestations?: AttestedImage[];
  signal: AbortSignal;
  /** Progress lines. */
  log: (s: string) => void;
}

/**
 * Write every file/directory output of a build (the store and registry outputs need nothing
 * here). An ExportError passes through (the CLI maps it to its exit codes).
 */
export async function writeBuildOutputs(o: BuildOutputs, ctx: BuildOutputContext): Promise<void> {
  for (const spec of o.specs) {
    if (spec.type === 'image' || spec.type === 'registry') continue;
    if (spec.type === 'local' && ctx.platforms) {
      await writeLocalPerPlatform(spec, ctx);
      await writeLocalAttestationFiles(spec.dest, ctx);
      continue;
    }
    const r = await writeOutput(spec, {
      store: ctx.store,
      snapshotter: async () => ctx.snapshotter,
      descriptor: spec.type === 'oci' && ctx.attested ? ctx.attested : ctx.descriptor,
      ...(ctx.layers ? { layers: ctx.layers } : {}),
      refs: ctx.tags,
      signal: ctx.signal,
      ...(ctx.platform ? { platform: ctx.platform } : {}),
      ...(ctx.sourceDateEpoch !== undefined ? { sourceDateEpoch: ctx.sourceDateEpoch } : {}),
    });
    ctx.log(`exported ${r.type} to ${r.dest === '-' ? 'stdout' : r.dest}\n`);
    if (spec.type === 'local') await writeLocalAttestationFiles(spec.dest, ctx);
  }
}

async function writeLocalAttestationFiles(dest: string, ctx: BuildOutputContext): Promise<void> {
  if (!ctx.localAttestations?.length) return;
  const { writeLocalAttestations } = await import('./attestations.js');
  await writeLocalAttestations(dest, ctx.localAttestations, ctx.platforms);
}

/** `type=local` of a multi-platform build: `DEST/linux_amd64`, `DEST/linux_arm64`, … (as buildx). */
async function writeLocalPerPlatform(spec: Extract<OutputSpec, { type: 'local' }>, ctx: BuildOutputContext): Promise<void> {
  for (const p of ctx.platforms ?? []) {
    const dir = path.join(spec.dest, [p.os, p.architecture, ...(p.variant ? [p.variant] : [])].join('_'));
    const r = await writeOutput({ ...spec, dest: dir }, { store: ctx.store, snapshotter: async () => ctx.snapshotter, descriptor: ctx.descriptor, refs: ctx.tags, signal: ctx.signal, platform: p });
    ctx.log(`exported ${r.type} (${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}) to ${r.dest}\n`);
  }
}
