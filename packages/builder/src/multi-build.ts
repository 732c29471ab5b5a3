/**
 * `--platform a,b`: one build per platform, in turn, then an image index of their manifests.
 * Each platform resolves its own bases (from the base's index) and has its own cache keys (the
 * platform is an input of every RUN and of every base); a stage pinned with
 * `FROM --platform=$BUILDPLATFORM` has the same keys for every target, so it runs in the first
 * platform's build and is a cache hit in the others.
 */
import { canonicalJson, formatReference, MediaType, parseReference, type Descriptor, type Platform } from '@hoist/oci';
import { parse, plan as makePlan, stagesNeeded } from '@hoist/parser';
import { build } from './build.js';
import { BuildError } from './errors.js';
import { checkPlatformsRunnable, configPlatform, formatPlatform } from './platforms.js';
import type { BuildInput, BuildOptions, BuildResult } from './types.js';

export interface PlatformBuild {
  platform: Platform;
  result: BuildResult;
}

/** A multi-platform build: the index (in the store, tagged) and each platform's build. */
export interface MultiBuildResult {
  descriptor: Descriptor;
  tags: string[];
  platforms: PlatformBuild[];
  stats: BuildResult['stats'];
  cacheRecords: BuildResult['cacheRecords'];
  /** Every platform's cache mounts (each key once). */
  cacheMounts: NonNullable<BuildResult['cacheMounts']>;
  /** Every platform's layers, wherever each blob is. */
  layers: BuildResult['layers'];
  remoteLayers: Descriptor[];
}

/**
 * Every platform is checked (can its RUN steps run here?) before any is built, so that a
 * build for `linux/amd64,linux/s390x` without an s390x emulator builds nothing.
 */
export function checkTargetPlatforms(opts: Pick<BuildOptions, 'dockerfile' | 'buildArgs' | 'target' | 'emulationHost'>, platforms: Platform[]): void {
  const df = parse(opts.dockerfile.text, { file: opts.dockerfile.path });
  for (const p of platforms) {
    const plan = makePlan(df, { buildArgs: opts.buildArgs ?? {}, platform: formatPlatform(p), ...(opts.target ? { target: opts.target } : {}) });
    checkPlatformsRunnable(plan, { stages: stagesNeeded(plan), target: p, ...(opts.emulationHost ? { host: opts.emulationHost } : {}) });
  }
}

export async function buildPlatforms(opts: BuildInput, platforms: Platform[]): Promise<MultiBuildResult> {
  const seen = new Set(platforms.map(formatPlatform));
  if (seen.size !== platforms.length) throw new BuildError('UNSUPPORTED', `--platform lists a platform twice: ${platforms.map(formatPlatform).join(',')}`);
  checkTargetPlatforms(opts, platforms);
  const builds: PlatformBuild[] = [];
  // in turn, not at once: the $BUILDPLATFORM stages then run once (the later builds hit the cache)
  for (const platform of platforms) {
    opts.progress?.({ type: 'info', message: `platform ${formatPlatform(platform)}` });
    builds.push({ platform, result: await build({ ...opts, platform, tags: [] }) });
  }
  const format = opts.format ?? 'oci';
  const index = {
    schemaVersion: 2,
    mediaType: format === 'oci' ? MediaType.OciIndex : MediaType.DockerManifestList,
    manifests: builds.map((b) => ({ mediaType: b.result.descriptor.mediaType, digest: b.result.descriptor.digest, size: b.result.descriptor.size, platform: configPlatform(b.result.config) })),
  };
  const descriptor = await opts.store.blobs.putBytes(canonicalJson(index), index.mediaType);
  const remoteLayers = builds.flatMap((b) => b.result.remoteLayers);
  const tags: string[] = [];
  // a lazy result is not tagged locally: its blobs are not all here
  for (const t of remoteLayers.length > 0 ? [] : (opts.tags ?? [])) tags.push(await opts.store.tag(formatReference(parseReference(t)), descriptor));
  const cacheMounts = [...new Map(builds.flatMap((b) => b.result.cacheMounts ?? []).map((m) => [m.key, m])).values()];
  return { descriptor, tags, platforms: builds, stats: sumStats(builds), cacheRecords: mergeRecords(builds), cacheMounts, layers: builds.flatMap((b) => b.result.layers), remoteLayers };
}

function sumStats(builds: PlatformBuild[]): BuildResult['stats'] {
  const s = { executed: 0, cached: 0, runSteps: 0, layersFetched: 0 };
  for (const { result: r } of builds) for (const k of Object.keys(s) as Array<keyof typeof s>) s[k] += r.stats[k];
  return s;
}

/** Every platform's records (a key is the same record whichever platform found it). */
function mergeRecords(builds: PlatformBuild[]): BuildResult['cacheRecords'] {
  const merge = (pick: (r: BuildResult) => BuildResult['cacheRecords']['min']): BuildResult['cacheRecords']['min'] => [...new Map(builds.flatMap((b) => pick(b.result)).map((r) => [r.key, r])).values()];
  return { min: merge((r) => r.cacheRecords.min), max: merge((r) => r.cacheRecords.max) };
}
