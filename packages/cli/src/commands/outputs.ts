import * as path from 'node:path';
import type { Descriptor, ImageStore, Platform } from '@hoist/oci';
import type { Snapshotter } from '@hoist/snapshotter';
import { ExportError, parseOutputSpecs, pushes, writeOutput, writesStdout, type OutputSpec } from '@hoist/exporter';
import { ExitError, UsageError } from '../errors.js';

/** Export error codes that are the user's input: exit 2 like other usage errors. */
const USAGE_CODES = new Set(['OUTPUT_INVALID', 'SIZE_INVALID', 'DEST_EXISTS', 'DEST_TERMINAL', 'IMAGE_UNKNOWN']);

/**
 * Run `fn`, reporting an ExportError the way the CLI reports errors: user mistakes as usage
 * errors (exit 2), the rest as `ERROR: ...` with the hint (exit 1). Other errors pass through.
 */
export async function exportErrors<T>(fn: () => Promise<T>, write: (s: string) => void = (s) => process.stderr.write(s)): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (!(e instanceof ExportError)) throw e;
    if (USAGE_CODES.has(e.code)) throw new UsageError(e.hint ? `${e.message}; ${e.hint}` : e.message);
    write(`ERROR: ${e.message}\n${e.hint ? `  ${e.hint}\n` : ''}`);
    throw new ExitError(e.code === 'ABORTED' ? 130 : 1, e.message);
  }
}

/** `--output` values of `hoist build`, parsed before the build so that mistakes cost nothing. */
export interface BuildOutputs {
  specs: OutputSpec[];
  /** `type=registry` (or `type=image,push=true`): push as `--push` does. */
  push: boolean;
  /** An output writes to stdout: the digest must not go there. */
  stdout: boolean;
}

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
  /** Full references the build tagged. */
  tags: readonly string[];
  platform?: Platform;
  /** A multi-platform build's platforms (the descriptor is their index): type=local writes one folder each. */
  platforms?: Platform[];
  signal: AbortSignal;
  /** Progress lines (stderr), already muted in quiet mode. */
  log: (s: string) => void;
  /** Where a failed export is reported (default: stderr as text; `--progress=json`: an error event). */
  report?: (s: string) => void;
}

/** Write every file/directory output of a build (the store and registry outputs need nothing here). */
export async function writeBuildOutputs(o: BuildOutputs, ctx: BuildOutputContext): Promise<void> {
  const sde = process.env.SOURCE_DATE_EPOCH;
  for (const spec of o.specs) {
    if (spec.type === 'image' || spec.type === 'registry') continue;
    if (spec.type === 'local' && ctx.platforms) {
      await writeLocalPerPlatform(spec, ctx);
      continue;
    }
    const r = await exportErrors(() =>
      writeOutput(spec, {
        store: ctx.store,
        snapshotter: async () => ctx.snapshotter,
        descriptor: ctx.descriptor,
        refs: ctx.tags,
        signal: ctx.signal,
        ...(ctx.platform ? { platform: ctx.platform } : {}),
        ...(sde !== undefined && /^\d+$/.test(sde) ? { sourceDateEpoch: Number(sde) } : {}),
      }),
      ctx.report,
    );
    ctx.log(`exported ${r.type} to ${r.dest === '-' ? 'stdout' : r.dest}\n`);
  }
}

/** `type=local` of a multi-platform build: `DEST/linux_amd64`, `DEST/linux_arm64`, … (as buildx). */
async function writeLocalPerPlatform(spec: Extract<OutputSpec, { type: 'local' }>, ctx: BuildOutputContext): Promise<void> {
  for (const p of ctx.platforms ?? []) {
    const dir = path.join(spec.dest, [p.os, p.architecture, ...(p.variant ? [p.variant] : [])].join('_'));
    const r = await exportErrors(() =>
      writeOutput({ ...spec, dest: dir }, { store: ctx.store, snapshotter: async () => ctx.snapshotter, descriptor: ctx.descriptor, refs: ctx.tags, signal: ctx.signal, platform: p }),
    );
    ctx.log(`exported ${r.type} (${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}) to ${r.dest}\n`);
  }
}
