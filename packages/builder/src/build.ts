import { currentUserNamespace, formatReference, hostPlatform, layerCompression, layerMediaType, parsePlatform, parseReference, writeImage, type Image, type Platform } from '@hoist/oci';
import { BuildError } from './errors.js';
import { createDockerignoreMatcher, outline, parse, plan as makePlan, stagesNeeded, type BaseImageInfo, type Dockerfile } from '@hoist/parser';
import { BuildSession } from './session.js';
import type { StageState } from './state.js';
import type { CacheRecord } from './cache.js';
import { Solver } from './solver.js';
import { isoTime } from './step.js';
import { fetchLayers, imageLayers } from './materialize.js';
import type { BuildInput, BuildOptions, BuildResult, ResolvedImage } from './types.js';
import { checkEntitlements } from './sandbox/entitlements.js';
import { checkLimitsAllowed, describeIsolation } from './sandbox/isolation.js';
import { effectiveDefaultNetwork, tunUsable } from './sandbox/network.js';
import { runBuildChecks } from './checks.js';
import { baseKey, checkPlatformsRunnable, formatPlatform, refOfKey } from './platforms.js';

function limitFlags(r: BuildOptions['resources']): string[] {
  const named: Array<[unknown, string]> = [[r?.memoryBytes, '--memory'], [r?.cpus, '--cpus'], [r?.pidsLimit, '--pids-limit']];
  return named.filter(([v]) => v !== undefined).map(([, n]) => n);
}

function platformString(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/**
 * Build a Dockerfile: parse, resolve base images, plan, run the stages the target needs
 * (independent stages in parallel), write the image, tag it. The store only ever gains
 * complete blobs; the image is tagged last, so a failed build leaves no image behind.
 */
export async function build(input: BuildInput): Promise<BuildResult> {
  checkLimitsAllowed(limitFlags(input.resources));
  const net = effectiveDefaultNetwork(input.network, { rootless: currentUserNamespace() !== undefined, tunUsable: () => tunUsable() });
  const platform: Platform = input.platform ?? { os: 'linux', architecture: hostArch() };
  const buildPlatform = platformString(input.emulationHost?.platform ?? hostPlatform());
  const df = parse(input.dockerfile.text, { file: input.dockerfile.path });
  const planArgs = { buildArgs: input.buildArgs ?? {}, platform: platformString(platform), buildPlatform, ...(input.target ? { target: input.target } : {}), ...(input.namedContexts?.length ? { namedContexts: input.namedContexts } : {}) };
  const o = outline(df, planArgs);
  // the base images resolve while the snapshotter opens (issue 16: a new store's overlay probe);
  // nothing that can refuse the build comes between the two
  const resolving = resolveBases(input, { df, platform, outline: o });
  resolving.catch(() => undefined); // awaited below
  const snapshotter = await Promise.resolve(input.snapshotter).catch(async (e: unknown) => {
    await resolving.catch(() => undefined); // nothing of this build runs on after it failed
    throw e;
  });
  const opts: BuildOptions = { ...input, snapshotter, network: net.network };
  opts.progress?.({ type: 'info', message: `isolation: ${opts.executor?.describe?.() ?? describeIsolation()}; snapshots: ${opts.snapshotter.describe()}` });
  if (net.warning) opts.progress?.({ type: 'warning', message: net.warning });
  const resolved = await resolving;
  const baseImages: Record<string, BaseImageInfo> = {};
  for (const [key, img] of resolved) baseImages[refOfKey(key)] = baseInfo(img);
  const plan = makePlan(df, { ...planArgs, baseImages });
  const ctx = new BuildSession(opts, plan, platform);
  // read the context's stat cache while the steps are keyed (it never fails: a bad one is empty)
  void ctx.fileDigests.ready();
  const bases = new Map(resolved);
  for (const [, img] of resolved) ctx.layers.add(img.layers);
  if (opts.dockerignore) ctx.contextFilter = createDockerignoreMatcher(opts.dockerignore);
  const stages = stagesNeeded(plan);
  checkPlatformsRunnable(plan, { stages, target: platform, ...(opts.emulationHost ? { host: opts.emulationHost } : {}) });
  const byStage = new Map(o.baseRefs.map((b) => [b.stage, resolved.find(([k]) => k === baseKey(b.ref, b.platform ? parsePlatform(b.platform) : platform))![1]] as const));
  // as BuildKit shows its checks: the rule's name, then what it found
  runBuildChecks({ df, buildArgs: planArgs.buildArgs, platform: planArgs.platform, stages, ...(opts.dockerignore !== undefined ? { dockerignore: opts.dockerignore } : {}), baseImages, baseRefs: o.baseRefs, resolved: [], byStage }, (ev) => ctx.emit(ev));
  for (const w of plan.warnings) ctx.emit({ type: 'warning', message: `${w.code}: ${w.message}`, ...(w.line ? { line: w.line } : {}) });
  checkEntitlements({ plan, stages, allow: opts.allow ?? [], network: opts.network, label: (i, s) => ctx.label(i, s) });
  ctx.emit({ type: 'plan', target: plan.target, stages: stages.map((i) => ({ index: i, steps: plan.stages[i]!.steps.length, ...(plan.stages[i]!.name ? { name: plan.stages[i]!.name! } : {}) })) });
  const solver = new Solver(ctx, bases);
  try {
    // pass 1: every key, nothing executed; pass 2: run only the stages the target really
    // needs, all started at once so independent stages run in parallel (bounded by --jobs)
    await Promise.all(stages.map((i) => solver.key(i)));
    const toRun = await solver.stagesToRun(plan.target);
    const all = [...new Set([...toRun, plan.target])].map((i) => solver.run(i));
    const results = await Promise.allSettled(all);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const final = await solver.run(plan.target);
    // every stage has run: nothing needs a sandbox any more (unmounted while the image is written)
    ctx.closeSandboxes().catch(() => undefined);
    const history = final.img.config.history ?? [];
    const created = opts.sourceDateEpoch !== undefined ? isoTime(ctx) : (history.at(-1)?.created ?? final.lastCreated);
    const img = withLabels({ ...final.img, config: { ...final.img.config, created } }, opts.labels);
    // the image's layers that this build committed are in the blob store (their fsyncs ran off
    // the steps' paths; a failure fails the build here, and the records of others before the tag)
    await Promise.all(img.layers.map((d) => opts.snapshotter.blobStored(d.digest)));
    if (!opts.lazyLayers) await fetchLayers(ctx, img);
    const layers = await imageLayers(ctx, img);
    const here = await Promise.all(layers.map((l) => opts.store.blobs.has(l.descriptor.digest)));
    const remoteLayers = layers.filter((_, i) => !here[i]).map((l) => l.descriptor);
    const written = await writeImage(opts.store.blobs, withLayerMediaTypes(img, opts.format ?? 'oci'), { format: opts.format ?? 'oci', ...(opts.manifestAnnotations ? { annotations: opts.manifestAnnotations } : {}) });
    await ctx.recordsWritten();
    const tags: string[] = [];
    // a lazy result is not tagged locally: its blobs are not all here (fsck would flag it)
    for (const t of remoteLayers.length > 0 ? [] : (opts.tags ?? [])) tags.push(await opts.store.tag(formatReference(parseReference(t)), written.descriptor));
    const cacheRecords = await exportableRecords(solver, { stages, toRun, final });
    return { descriptor: written.descriptor, manifest: written.manifest, config: img.config, tags, stats: ctx.stats.snapshot(), cacheRecords, layers, remoteLayers, cacheMounts: [...ctx.cacheMounts.used].map(([key, dir]) => ({ key, dir })) };
  } finally {
    await solver.cleanup().finally(() => ctx.cleanup());
  }
}

/** Resolve every base image the outline names (in parallel); a failure names the FROM line. */
async function resolveBases(opts: Pick<BuildOptions, 'images' | 'signal' | 'dockerfile'>, o: { df: Dockerfile; platform: Platform; outline: ReturnType<typeof outline> }): Promise<Array<readonly [string, ResolvedImage]>> {
  // one per reference and platform: `FROM --platform=$BUILDPLATFORM x` and `FROM x` are two images
  const needed = new Map<string, { ref: string; platform: Platform }>();
  for (const b of o.outline.baseRefs) {
    const platform = b.platform ? parsePlatform(b.platform) : o.platform;
    needed.set(baseKey(b.ref, platform), { ref: b.ref, platform });
  }
  return Promise.all(
    [...needed].map(async ([key, { ref, platform }]) => {
      try {
        return [key, await opts.images.resolve(ref, { platform, ...(opts.signal ? { signal: opts.signal } : {}) })] as const;
      } catch (e) {
        // name the FROM line that asked for the image, keep the registry's own explanation
        const b = o.outline.baseRefs.find((x) => x.ref === ref && (x.platform ?? formatPlatform(o.platform)) === formatPlatform(platform)) ?? o.outline.baseRefs.find((x) => x.ref === ref)!;
        const st = o.df.stages[b.stage]!;
        throw new BuildError('BASE_IMAGE_NOT_FOUND', `base image ${ref}: ${(e as Error).message}`, {
          cause: e,
          location: { stage: st.name ?? String(b.stage), step: st.node.original, file: opts.dockerfile.path, line: st.node.startLine, instruction: st.node.original },
        });
      }
    }),
  );
}

/** What the planner needs of a base image: env for expansion, ONBUILD triggers, workdir, user, shell. */
function baseInfo(img: ResolvedImage): BaseImageInfo {
  const c = img.config.value.config ?? {};
  const info: BaseImageInfo = {};
  if (c.Env) info.env = c.Env;
  if (c.OnBuild) info.onBuild = c.OnBuild;
  if (c.WorkingDir) info.workingDir = c.WorkingDir;
  if (c.User) info.user = c.User;
  if (c.Shell) info.shell = c.Shell;
  return info;
}

/**
 * The records `--cache-to` exports: `min`, those of the final image's layers (the target stage
 * and the stages it is built FROM); `max`, those of every stage the target needs, whether it
 * ran in this build or was entirely cached (then its records are the ones pass 1 found).
 */
async function exportableRecords(solver: Solver, b: { stages: number[]; toRun: number[]; final: StageState }): Promise<BuildResult['cacheRecords']> {
  const max = new Map<string, CacheRecord>();
  for (const i of b.stages) {
    const st = b.toRun.includes(i) || i === solver.session.plan.target ? await solver.run(i) : await solver.key(i);
    for (const r of st.records) max.set(r.key, r);
  }
  return { min: [...b.final.records], max: [...max.values()] };
}

/**
 * Layer descriptors in the output format's media types: a base image's OCI layers become
 * Docker layers with `--format docker` and the other way round (the blobs are the same bytes).
 */
function withLayerMediaTypes(img: Image, format: 'oci' | 'docker'): Image {
  const layers = img.layers.map((l) => {
    const c = layerCompression(l.mediaType);
    if (format === 'docker' && c !== 'gzip') throw new BuildError('UNSUPPORTED', `--format docker needs gzip layers, but layer ${l.digest} is ${c}; build with --format oci`);
    return { ...l, mediaType: layerMediaType(format, c) };
  });
  return { ...img, layers };
}

/** `--label K=V`: merged over the labels the Dockerfile set (as BuildKit's `label:` build args). */
function withLabels(img: Image, labels: Record<string, string> | undefined): Image {
  if (!labels || Object.keys(labels).length === 0) return img;
  const c = img.config.config ?? {};
  return { ...img, config: { ...img.config, config: { ...c, Labels: { ...(c.Labels ?? {}), ...labels } } } };
}

function hostArch(): string {
  return ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[process.arch] ?? process.arch;
}
