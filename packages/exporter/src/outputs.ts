import type { Writable } from 'node:stream';
import type { Descriptor, ImageStore, Layer, Platform } from '@hoist/oci';
import type { Snapshotter } from '@hoist/snapshotter';
import { assertNever } from './assert.js';
import { loadExportImage } from './images.js';
import { exportRootfsDir, exportRootfsTar } from './rootfs.js';
import { saveImages, saveOciDir } from './save.js';
import type { OutputSpec } from './output-spec.js';

export interface OutputContext {
  store: ImageStore;
  /** Opened only for the root filesystem outputs. */
  snapshotter: () => Promise<Snapshotter>;
  /** The built image: its manifest(s) and config(s) in the store. */
  descriptor: Descriptor;
  /** Layers whose blobs are not in the store (a lazy build result's); the others are read from the store. */
  layers?: readonly Layer[];
  /** Its full references (`docker.io/library/app:1`): names in the archives. */
  refs: readonly string[];
  platform?: Platform;
  /** Where `dest=-` goes (default process.stdout). */
  stdout?: Writable & { isTTY?: boolean };
  sourceDateEpoch?: number;
  signal?: AbortSignal;
}

/** What an output did, for the CLI to print. */
export interface OutputResult {
  type: OutputSpec['type'];
  /** Absolute path written, `-` for stdout; undefined for store/registry outputs. */
  dest?: string;
}

/**
 * Write one build output. `image` and `registry` need nothing here (the image is in the store;
 * pushing is the registry client's job, which the caller runs for `registry`).
 */
export async function writeOutput(spec: OutputSpec, ctx: OutputContext): Promise<OutputResult> {
  const sig = ctx.signal ? { signal: ctx.signal } : {};
  const stdout = ctx.stdout ?? process.stdout;
  const image = async (wholeIndex: boolean) =>
    loadExportImage(ctx.store, ctx.descriptor, { refs: [...ctx.refs], wholeIndex, ...(ctx.platform ? { platform: ctx.platform } : {}), ...(ctx.layers ? { layers: ctx.layers } : {}) });
  switch (spec.type) {
    case 'image':
    case 'registry':
      return { type: spec.type };
    case 'oci': {
      const img = await image(true);
      const dest = spec.tar
        ? await saveImages([img], { format: 'oci', dest: spec.dest, stdout, ...sig, ...(ctx.sourceDateEpoch !== undefined ? { mtime: ctx.sourceDateEpoch } : {}) })
        : await saveOciDir([img], spec.dest, sig);
      return { type: 'oci', dest };
    }
    case 'docker': {
      const img = await image(false);
      const dest = await saveImages([img], { format: 'docker', dest: spec.dest, stdout, ...sig, ...(ctx.sourceDateEpoch !== undefined ? { mtime: ctx.sourceDateEpoch } : {}) });
      return { type: 'docker', dest };
    }
    case 'local': {
      const img = await image(false);
      return { type: 'local', dest: await exportRootfsDir(await ctx.snapshotter(), img.primary, spec.dest, sig) };
    }
    case 'tar': {
      const img = await image(false);
      const dest = await exportRootfsTar(await ctx.snapshotter(), img.primary, spec.dest, {
        stdout,
        ...sig,
        ...(ctx.sourceDateEpoch !== undefined ? { sourceDateEpoch: ctx.sourceDateEpoch } : {}),
      });
      return { type: 'tar', dest };
    }
    default:
      return assertNever(spec);
  }
}
