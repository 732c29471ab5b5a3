/** Provenance predicates, in-toto statements and BuildKit's attestation storage, on a real store. */
import { promises as fsp } from 'node:fs';
import { parseConfig, parseIndex, parseManifest, type Digest } from '@hoist/oci';
import {
  imagePurl,
  imageSbom,
  imageSubjects,
  isAttestationManifest,
  provenancePredicate,
  statement,
  writeAttestedIndex,
  PREDICATE_PROVENANCE_V1,
  type ProvenanceInput,
} from '@hoist/exporter';
import { hoistLayer, makeImage, newStore } from './helpers.js';

const base: ProvenanceInput = {
  mode: 'min',
  invocationId: 'abc',
  startedOn: new Date('2024-01-01T00:00:00Z'),
  finishedOn: new Date('2024-01-01T00:01:00Z'),
  dockerfilePath: 'Dockerfile',
  args: { filename: 'Dockerfile', 'build-arg:VERSION': '1', 'label:team': 'x', target: 'app', platform: 'linux/amd64' },
  locals: ['context', 'dockerfile'],
  secrets: ['npmrc'],
  ssh: ['default'],
  dependencies: [{ uri: 'pkg:docker/debian@12?platform=linux%2Famd64', digest: { sha256: 'aa' } }],
  builderPlatform: 'linux/amd64',
  hermetic: false,
  dockerfileText: 'FROM debian:12\n',
  steps: [{ created_by: 'RUN true' }],
  layers: [],
};

type P = { buildDefinition: Record<string, any>; runDetails: Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('provenance predicate (BuildKit slsa-definitions, v1)', () => {
  it('mode=min: no build args, labels, secrets, ssh, steps or source; request incomplete; host args dropped', () => {
    const p = provenancePredicate(base) as P;
    expect(p.buildDefinition.buildType).toBe('https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md');
    expect(p.buildDefinition.externalParameters).toEqual({
      configSource: { path: 'Dockerfile' },
      request: { frontend: 'dockerfile.v0', args: { filename: 'Dockerfile', target: 'app' }, locals: [{ name: 'context' }, { name: 'dockerfile' }] },
    });
    expect(p.buildDefinition.internalParameters).toEqual({ builderPlatform: 'linux/amd64' });
    expect(p.buildDefinition.resolvedDependencies).toEqual(base.dependencies);
    expect(p.runDetails).toEqual({
      builder: { id: '' },
      metadata: {
        invocationID: 'abc',
        startedOn: '2024-01-01T00:00:00.000Z',
        finishedOn: '2024-01-01T00:01:00.000Z',
        buildkit_hermetic: false,
        buildkit_completeness: { request: false, resolvedDependencies: false },
        buildkit_reproducible: false,
      },
    });
  });

  it('mode=max: build args and labels, secret and ssh ids, the steps, the Dockerfile source; request complete', () => {
    const p = provenancePredicate({ ...base, mode: 'max', builderId: 'https://ci/run/1' }) as P;
    const req = p.buildDefinition.externalParameters.request;
    expect(req.args).toEqual({ 'build-arg:VERSION': '1', filename: 'Dockerfile', 'label:team': 'x', target: 'app' });
    expect(req.secrets).toEqual([{ id: 'npmrc' }]);
    expect(req.ssh).toEqual([{ id: 'default' }]);
    expect(p.buildDefinition.internalParameters.buildConfig).toEqual({ steps: [{ id: 'step0', created_by: 'RUN true' }] });
    expect(Buffer.from(p.runDetails.metadata.buildkit_metadata.source.infos[0].data, 'base64').toString()).toBe('FROM debian:12\n');
    expect(p.runDetails.metadata.buildkit_completeness.request).toBe(true);
    expect(p.runDetails.builder.id).toBe('https://ci/run/1');
  });
});

describe('provenance of a git context', () => {
  it('configSource has its URL and commit, it leads the resolved dependencies; complete when nothing was local', () => {
    const git = { uri: 'https://host/repo.git#main:sub', digest: { sha1: 'c'.repeat(40) } };
    const p = provenancePredicate({ ...base, configSource: git, locals: [] }) as P;
    expect(p.buildDefinition.externalParameters.configSource).toEqual({ uri: git.uri, digest: git.digest, path: 'Dockerfile' });
    expect(p.buildDefinition.resolvedDependencies).toEqual([git, ...base.dependencies]);
    expect(p.runDetails.metadata.buildkit_completeness.resolvedDependencies).toBe(true);
    const withLocal = provenancePredicate({ ...base, configSource: git, locals: ['tools'] }) as P;
    expect(withLocal.runDetails.metadata.buildkit_completeness.resolvedDependencies).toBe(false);
  });
});

describe('in-toto subjects', () => {
  it('purls as BuildKit writes them: familiar name, tag or latest, platform qualifier', () => {
    expect(imagePurl('docker.io/library/alpine:3.19', { os: 'linux', architecture: 'arm64', variant: 'v8' })).toBe('pkg:docker/alpine@3.19?platform=linux%2Farm64%2Fv8');
    expect(imagePurl('localhost:5000/team/app', { os: 'linux', architecture: 'amd64' })).toBe('pkg:docker/localhost:5000/team/app@latest?platform=linux%2Famd64');
    const d = `sha256:${'b'.repeat(64)}` as Digest;
    expect(imageSubjects([], d, { os: 'linux', architecture: 'amd64' })).toEqual([{ name: '_', digest: { sha256: 'b'.repeat(64) } }]);
  });
});

describe('attestation storage (BuildKit attestation-storage.md)', () => {
  it('an index of the image and an attestation manifest: unknown/unknown, reference annotations, in-toto layers with predicate types', async () => {
    const { root, store } = await newStore();
    try {
      const layer = await hoistLayer(store, { 'var/lib/dpkg/status': 'Package: hello\nStatus: install ok installed\nVersion: 2.10-3\nArchitecture: amd64\n' });
      const img = await makeImage(store, [layer]);
      const platform = { os: 'linux', architecture: 'amd64' };
      const st = statement(imageSubjects(['localhost:5000/a/b:1'], img.digest, platform), PREDICATE_PROVENANCE_V1, provenancePredicate(base));
      const top = await writeAttestedIndex(store.blobs, [{ descriptor: img, platform, statements: [st] }]);
      const idx = parseIndex(await store.blobs.getBytes(top)).value;
      expect(idx.mediaType).toBe('application/vnd.oci.image.index.v1+json');
      expect(idx.manifests.map((m) => [m.digest, m.platform])).toEqual([[img.digest, platform], [expect.any(String), { os: 'unknown', architecture: 'unknown' }]]);
      const att = idx.manifests[1]!;
      expect(att.annotations).toEqual({ 'vnd.docker.reference.digest': img.digest, 'vnd.docker.reference.type': 'attestation-manifest' });
      expect(isAttestationManifest(att)).toBe(true);
      expect(isAttestationManifest(idx.manifests[0]!)).toBe(false);
      const m = parseManifest(await store.blobs.getBytes(att)).value;
      expect(m.layers.map((l) => [l.mediaType, l.annotations])).toEqual([['application/vnd.in-toto+json', { 'in-toto.io/predicate-type': 'https://slsa.dev/provenance/v1' }]]);
      const cfg = parseConfig(await store.blobs.getBytes(m.config)).value;
      expect([cfg.os, cfg.architecture, cfg.rootfs.diff_ids]).toEqual(['unknown', 'unknown', [m.layers[0]!.digest]]);
      const body = JSON.parse((await store.blobs.getBytes(m.layers[0]!)).toString()) as { _type: string; subject: Array<{ name: string; digest: { sha256: string } }> };
      expect(body._type).toBe('https://in-toto.io/Statement/v1');
      expect(body.subject).toEqual([{ name: 'pkg:docker/localhost:5000/a/b@1?platform=linux%2Famd64', digest: { sha256: img.digest.slice(7) } }]);
    } finally {
      await fsp.rm(root, { recursive: true, force: true });
    }
  });

  it('imageSbom reads the stored image: the dpkg package of its layer, the same document for the same created time', async () => {
    const { root, store } = await newStore();
    try {
      const l1 = await hoistLayer(store, { 'etc/os-release': 'ID=debian\nVERSION_ID="12"\n', 'var/lib/dpkg/status': 'Package: hello\nStatus: install ok installed\nVersion: 2.10-3\nArchitecture: amd64\n' });
      const l2 = await hoistLayer(store, { 'app/node_modules/ms/package.json': '{"name":"ms","version":"2.1.3"}' });
      const img = await makeImage(store, [l1, l2]);
      const manifest = parseManifest(await store.blobs.getBytes(img)).value;
      const config = parseConfig(await store.blobs.getBytes(manifest.config)).value;
      const o = { blobs: store.blobs, manifest, config, digest: img.digest, name: 'app', created: new Date(1e12), toolVersion: 't' };
      const doc = (await imageSbom(o)) as { packages: Array<{ name: string; externalRefs: Array<{ referenceLocator: string }> }> };
      expect(doc.packages.map((p) => p.externalRefs[0]!.referenceLocator)).toEqual(['pkg:npm/ms@2.1.3', 'pkg:deb/debian/hello@2.10-3?arch=amd64&distro=debian-12']);
      expect(JSON.stringify(await imageSbom(o))).toBe(JSON.stringify(doc));
    } finally {
      await fsp.rm(root, { recursive: true, force: true });
    }
  });
});
