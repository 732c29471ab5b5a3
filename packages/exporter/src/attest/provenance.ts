/**
 * SLSA provenance v1 predicate with BuildKit's field layout (its `slsa-definitions` document):
 * `mode=min` keeps the frontend, the non-build-arg args, the locals, the resolved base images
 * and the run details; `mode=max` adds build args and labels, secret and ssh ids, the steps
 * (`internalParameters.buildConfig`), the Dockerfile source and the layers
 * (`runDetails.metadata.buildkit_metadata`).
 */
import type { Descriptor } from '@hoist/oci';

export const BUILD_TYPE = 'https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md';

export type ProvenanceMode = 'min' | 'max';

export interface ResolvedDependency {
  uri: string;
  digest: Record<string, string>;
}

/** What a build knows about itself; the predicate is a pure function of this. */
export interface ProvenanceInput {
  mode: ProvenanceMode;
  /** `builder-id=` of the attestation (e.g. the CI run URL); empty otherwise, as BuildKit. */
  builderId?: string;
  invocationId: string;
  startedOn: Date;
  finishedOn: Date;
  /** The Dockerfile's path relative to the context (`filename` frontend option). */
  dockerfilePath: string;
  /** Frontend options as BuildKit receives them: `build-arg:K`, `label:K`, `target`, … */
  args: Record<string, string>;
  /** A remote (git) context: its URL and commit; it is also a resolved dependency. */
  configSource?: ResolvedDependency;
  /** Local sources: `context`, `dockerfile`, named contexts. */
  locals: string[];
  secrets: string[];
  ssh: string[];
  dependencies: ResolvedDependency[];
  builderPlatform: string;
  /** No RUN step had network access. */
  hermetic: boolean;
  reproducible?: boolean;
  /** mode=max: the Dockerfile text, the image's history and layers. */
  dockerfileText?: string;
  steps?: Array<{ created_by?: string; empty_layer?: boolean }>;
  layers?: Descriptor[];
}

const ARG_PREFIXES = ['build-arg:', 'label:'];
/** Host-specific options BuildKit leaves out of the request. */
const HOST_ARGS = new Set(['cgroup-parent', 'image-resolve-mode', 'platform', 'cache-imports']);

function requestArgs(input: ProvenanceInput): { args: Record<string, string>; complete: boolean } {
  const args: Record<string, string> = {};
  let complete = true;
  for (const k of Object.keys(input.args).sort()) {
    if (HOST_ARGS.has(k) || k.startsWith('attest:')) continue;
    if (input.mode === 'min' && ARG_PREFIXES.some((p) => k.startsWith(p))) {
      complete = false;
      continue;
    }
    args[k] = input.args[k]!;
  }
  return { args, complete };
}

function buildDefinition(input: ProvenanceInput, args: Record<string, string>): Record<string, unknown> {
  const max = input.mode === 'max';
  const request: Record<string, unknown> = { frontend: 'dockerfile.v0', args, locals: input.locals.map((name) => ({ name })) };
  if (max) {
    request.secrets = input.secrets.map((id) => ({ id }));
    request.ssh = input.ssh.map((id) => ({ id }));
  }
  const internal: Record<string, unknown> = { builderPlatform: input.builderPlatform };
  if (max) internal.buildConfig = { steps: (input.steps ?? []).map((s, i) => ({ id: `step${i}`, ...s })) };
  return {
    buildType: BUILD_TYPE,
    externalParameters: { configSource: { ...(input.configSource ?? {}), path: input.dockerfilePath }, request },
    internalParameters: internal,
    resolvedDependencies: input.configSource ? [input.configSource, ...input.dependencies] : input.dependencies,
  };
}

function buildkitMetadata(input: ProvenanceInput): Record<string, unknown> | undefined {
  if (input.mode !== 'max') return undefined;
  const infos = input.dockerfileText === undefined ? [] : [{ filename: input.dockerfilePath, language: 'Dockerfile', data: Buffer.from(input.dockerfileText).toString('base64') }];
  const layers = (input.layers ?? []).map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size }));
  return { source: { infos }, layers: { image: layers } };
}

/** The `predicate` of a provenance statement. */
export function provenancePredicate(input: ProvenanceInput): Record<string, unknown> {
  const { args, complete } = requestArgs(input);
  const extra = buildkitMetadata(input);
  return {
    buildDefinition: buildDefinition(input, args),
    runDetails: {
      builder: { id: input.builderId ?? '' },
      metadata: {
        invocationID: input.invocationId,
        startedOn: input.startedOn.toISOString(),
        finishedOn: input.finishedOn.toISOString(),
        ...(extra ? { buildkit_metadata: extra } : {}),
        buildkit_hermetic: input.hermetic,
        // a local source is never tracked by digest, as in BuildKit: complete only from git with no locals
        buildkit_completeness: { request: complete, resolvedDependencies: !!input.configSource && input.locals.length === 0 },
        buildkit_reproducible: input.reproducible ?? false,
      },
    },
  };
}
