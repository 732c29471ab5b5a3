/**
 * Attestations of a build (`--provenance`, `--sbom`, `--attest`), attached the way BuildKit
 * does: an image index with each platform image and its attestation manifest. The local store
 * keeps the plain image under its tags (what `run`, `inspect`, `--load` use); the attested
 * index is what a push and an OCI layout output get.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { BuildResult, ImageSource, MultiBuildResult, ResolvedImage } from '@hoist/builder';
import { formatPlatform, hostPlatform, type Descriptor, type ImageStore, type Platform } from '@hoist/oci';
import { imagePurl, imageSbom, imageSubjects, provenancePredicate, statement, PREDICATE_PROVENANCE_V1, PREDICATE_SPDX, writeAttestedIndex, type AttestedImage, type ResolvedDependency, type Statement } from '@hoist/exporter';
import type { AttestationPlan } from '../attest-flags.js';
import { hoistVersion } from '../version.js';

/** Records the base images a build resolved (the provenance's resolved dependencies). */
export class RecordingImageSource implements ImageSource {
  readonly resolved = new Map<string, ResolvedDependency>();
  constructor(private readonly inner: ImageSource) {}

  async resolve(ref: string, opts: { platform: Platform; signal?: AbortSignal }): Promise<ResolvedImage> {
    const img = await this.inner.resolve(ref, opts);
    const uri = purlOf(ref, opts.platform);
    if (uri) this.resolved.set(uri, { uri, digest: { sha256: img.descriptor.digest.slice('sha256:'.length) } });
    return img;
  }
}

function purlOf(ref: string, platform: Platform): string | undefined {
  try {
    return imagePurl(ref, platform);
  } catch {
    return undefined; // a named context or layout path: not an image reference
  }
}

/** What the build was asked to do, for the provenance's request. */
export interface AttestSources {
  plan: AttestationPlan;
  store: ImageStore;
  /** Full names of the result (the statements' subjects). */
  names: string[];
  contextDir: string;
  dockerfile: { path: string; text: string };
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
  target?: string;
  namedContexts: string[];
  secrets: string[];
  ssh: string[];
  network: string;
  dependencies: ResolvedDependency[];
  startedOn: Date;
  finishedOn: Date;
  /** A git or http(s) URL context: the URL as given and the digest of what was fetched (a commit's sha1, a file's sha256). */
  contextSource?: { uri: string; digest: Record<string, string> };
  /** Annotations of an image's entry in the index (`--annotation manifest-descriptor:…`). */
  descriptorAnnotations?: (p: Platform) => Record<string, string> | undefined;
  /** `SOURCE_DATE_EPOCH`: the SBOM's creation time (the provenance keeps the real times, as BuildKit). */
  sourceDateEpoch?: number;
  signal?: AbortSignal;
}

/** BuildKit-style invocation ID: 25 lower-case base-36 characters, shared by all platforms. */
function invocationId(): string {
  const alphabet = '0123456789abcdefghijklmnopqrstuvwxyz';
  return [...randomBytes(25)].map((b) => alphabet[b % 36]).join('');
}

function frontendArgs(s: AttestSources): Record<string, string> {
  const args: Record<string, string> = { filename: dockerfilePath(s) };
  for (const [k, v] of Object.entries(s.buildArgs)) args[`build-arg:${k}`] = v;
  for (const [k, v] of Object.entries(s.labels)) args[`label:${k}`] = v;
  if (s.target) args.target = s.target;
  for (const n of s.namedContexts) args[`context:${n}`] = `local:${n}`;
  return args;
}

/** The Dockerfile's path as the frontend's `filename`: relative to the context when inside it. */
function dockerfilePath(s: AttestSources): string {
  if (s.dockerfile.path === '-') return 'Dockerfile';
  const rel = path.relative(s.contextDir, path.resolve(s.dockerfile.path));
  return rel.startsWith('..') ? path.basename(s.dockerfile.path) : rel;
}

/** The bases of one platform's build: all but those resolved for another target platform. */
function dependenciesOf(s: AttestSources, platform: Platform, targets: readonly Platform[]): ResolvedDependency[] {
  const q = (p: Platform): string => `?platform=${encodeURIComponent(formatPlatform(p))}`;
  const others = targets.filter((t) => formatPlatform(t) !== formatPlatform(platform)).map(q);
  return s.dependencies.filter((d) => !others.some((o) => d.uri.endsWith(o)));
}

function provenanceStatement(s: AttestSources, img: BuildResult, o: { invocation: string; platform: Platform; targets: readonly Platform[] }): Statement {
  const { invocation, platform } = o;
  const p = s.plan.provenance!;
  const predicate = provenancePredicate({
    mode: p.mode,
    ...(p.builderId ? { builderId: p.builderId } : {}),
    ...(p.reproducible ? { reproducible: true } : {}),
    invocationId: invocation,
    startedOn: s.startedOn,
    finishedOn: s.finishedOn,
    dockerfilePath: dockerfilePath(s),
    args: frontendArgs(s),
    // a git or http context is no local source: BuildKit lists only local directories here
    locals: [...(s.contextSource ? [] : ['context', 'dockerfile']), ...s.namedContexts],
    ...(s.contextSource ? { configSource: { uri: s.contextSource.uri, digest: s.contextSource.digest } } : {}),
    secrets: s.secrets,
    ssh: s.ssh,
    dependencies: dependenciesOf(s, platform, o.targets),
    builderPlatform: formatPlatform(hostPlatform()),
    hermetic: img.stats.runSteps === 0 || s.network === 'none',
    ...(p.mode === 'max' ? { dockerfileText: s.dockerfile.text, steps: img.config.history ?? [], layers: img.manifest.layers } : {}),
  });
  return statement(imageSubjects(s.names, img.descriptor.digest, platform), PREDICATE_PROVENANCE_V1, predicate);
}

/** Each platform image of a result, with its platform (from its config). */
function platformImages(result: BuildResult | MultiBuildResult): Array<{ img: BuildResult; platform: Platform }> {
  const all = 'platforms' in result ? result.platforms.map((p) => p.result) : [result];
  return all.map((img) => ({ img, platform: { os: img.config.os, architecture: img.config.architecture, ...(img.config.variant ? { variant: img.config.variant } : {}) } }));
}

/** Each platform image with its statements (the SBOM first, then the provenance, as BuildKit orders them). */
export async function attestedImages(s: AttestSources, result: BuildResult | MultiBuildResult, targets: readonly Platform[]): Promise<AttestedImage[]> {
  const invocation = invocationId();
  const images: AttestedImage[] = [];
  for (const { img, platform } of platformImages(result)) {
    const statements: Statement[] = [];
    if (s.plan.sbom) statements.push(await sbomStatement(s, img, platform));
    if (s.plan.provenance) statements.push(provenanceStatement(s, img, { invocation, platform, targets }));
    const annotations = s.descriptorAnnotations?.(platform);
    images.push({ descriptor: annotations ? { ...img.descriptor, annotations } : img.descriptor, platform, statements });
  }
  return images;
}

/** Store the statements and their manifests, and the index that lists them with the images; its descriptor. */
export function attachAttestations(store: ImageStore, images: readonly AttestedImage[]): Promise<Descriptor> {
  return writeAttestedIndex(store.blobs, images);
}

/**
 * `type=local` with attestations asked for: BuildKit's files next to the root filesystem —
 * `provenance.json` and `sbom.spdx.json` (the in-toto statements), in each platform's folder
 * (`DEST/linux_amd64/…`) for several platforms.
 */
export async function writeLocalAttestations(dest: string, images: readonly AttestedImage[], targets?: readonly Platform[]): Promise<void> {
  for (const [i, img] of images.entries()) {
    // the folder the rootfs went to: named after the target platform, as the rootfs output names it
    const p = targets?.[i];
    const dir = targets ? path.join(dest, [p!.os, p!.architecture, ...(p!.variant ? [p!.variant] : [])].join('_')) : dest;
    for (const st of img.statements) {
      const name = st.predicateType === PREDICATE_SPDX ? 'sbom.spdx.json' : 'provenance.json';
      await fsp.writeFile(path.join(dir, name), JSON.stringify(st, null, 2) + '\n', { mode: 0o644 });
    }
  }
}

/** The SPDX SBOM of one platform image, scanned from its layers in the store. */
async function sbomStatement(s: AttestSources, img: BuildResult, platform: Platform): Promise<Statement> {
  const predicate = await imageSbom({
    blobs: s.store.blobs,
    manifest: img.manifest,
    config: img.config,
    digest: img.descriptor.digest,
    name: s.names[0] ?? img.descriptor.digest,
    created: s.sourceDateEpoch !== undefined ? new Date(s.sourceDateEpoch * 1000) : s.finishedOn,
    toolVersion: hoistVersion(),
    ...(img.layers ? { layers: img.layers } : {}),
    ...(s.signal ? { signal: s.signal } : {}),
  });
  return statement(imageSubjects(s.names, img.descriptor.digest, platform), PREDICATE_SPDX, predicate);
}
