/** The buildx flag parsers on their own: values as buildx reads them, mistakes as usage errors. */
import { parseAddHost, parseShmSize, parseUlimit } from '@hoist/builder';
import { annotationsFor, parseAnnotations, parseLabels } from '../src/buildx-flags.js';
import { parseAttestations, planAttestations } from '../src/attest-flags.js';
import { contextKey } from '../src/named-contexts.js';
import { dockerEndpoint, requireDockerEndpoint } from '../src/docker-load.js';
import { UsageError } from '../src/errors.js';

describe('buildx flag values', () => {
  test('--ulimit: soft[:hard] as a runtime-spec rlimit', () => {
    expect(parseUlimit('nofile=1024:2048')).toEqual({ type: 'RLIMIT_NOFILE', soft: 1024, hard: 2048 });
    expect(parseUlimit('nproc=512')).toEqual({ type: 'RLIMIT_NPROC', soft: 512, hard: 512 });
    expect(parseUlimit('memlock=0:0')).toEqual({ type: 'RLIMIT_MEMLOCK', soft: 0, hard: 0 });
  });

  test('--add-host and --shm-size', () => {
    expect(parseAddHost('db:10.0.0.5')).toEqual({ host: 'db', ip: '10.0.0.5' });
    expect(parseAddHost('db=10.0.0.5')).toEqual({ host: 'db', ip: '10.0.0.5' });
    expect(parseAddHost('v6:[::1]')).toEqual({ host: 'v6', ip: '::1' });
    expect(parseAddHost('gw:host-gateway')).toEqual({ host: 'gw', ip: 'host-gateway' });
    expect(() => parseAddHost('db:300.1.1.1')).toThrow(/not an IP address/);
    expect(parseShmSize('128m')).toBe(128 * 1024 * 1024);
    expect(parseShmSize('1g')).toBe(1024 ** 3);
    expect(parseShmSize('4096')).toBe(4096);
  });

  test('--annotation: default manifest, several types, a platform qualifier', () => {
    const a = parseAnnotations(['k=v=w', 'index,manifest:org.x=1', 'manifest[linux/arm64]:arm=yes', 'manifest-descriptor:d=1']);
    expect(a).toEqual([
      { type: 'manifest', key: 'k', value: 'v=w' },
      { type: 'index', key: 'org.x', value: '1' },
      { type: 'manifest', key: 'org.x', value: '1' },
      { type: 'manifest', platform: 'linux/arm64', key: 'arm', value: 'yes' },
      { type: 'manifest-descriptor', key: 'd', value: '1' },
    ]);
    expect(annotationsFor(a, 'manifest', { os: 'linux', architecture: 'amd64' })).toEqual({ k: 'v=w', 'org.x': '1' });
    expect(annotationsFor(a, 'manifest', { os: 'linux', architecture: 'arm64', variant: 'v8' })).toEqual({ k: 'v=w', 'org.x': '1', arm: 'yes' });
  });

  test('--label: a bare key is an empty label (as buildx)', () => {
    expect(parseLabels(['a=1', 'b', 'c=x=y'])).toEqual({ a: '1', b: '', c: 'x=y' });
  });

  test('--provenance / --sbom / --attest: booleans, attributes, the last one per type wins, disabled ones drop', () => {
    expect(parseAttestations({ provenance: 'false', sbom: 'false' })).toEqual([]);
    expect(parseAttestations({ provenance: 'true' })).toEqual([{ type: 'provenance', attrs: {} }]);
    expect(parseAttestations({ attest: ['type=provenance,mode=max'], provenance: 'mode=min,inline-only=true' })).toEqual([{ type: 'provenance', attrs: { mode: 'min', 'inline-only': 'true' } }]);
    expect(parseAttestations({ attest: ['type=sbom,generator=docker/buildkit-syft-scanner', 'type=provenance,disabled=true'] })).toEqual([{ type: 'sbom', attrs: { generator: 'docker/buildkit-syft-scanner' } }]);
    expect(() => parseAttestations({ provenance: 'mode=all' })).toThrow(UsageError);
  });

  test('attestation plan: provenance mode=min by default as buildx, unless set (even to false) or BUILDX_NO_DEFAULT_ATTESTATIONS', () => {
    expect(planAttestations({}, {})).toEqual({ provenance: { mode: 'min' }, defaultOnly: true });
    expect(planAttestations({}, { BUILDX_NO_DEFAULT_ATTESTATIONS: '1' })).toEqual({ defaultOnly: true });
    expect(planAttestations({}, { BUILDX_NO_DEFAULT_ATTESTATIONS: 'false' })).toEqual({ provenance: { mode: 'min' }, defaultOnly: true });
    expect(planAttestations({ provenance: 'false' }, {})).toEqual({ defaultOnly: false });
    expect(planAttestations({ sbom: 'true' }, { BUILDX_NO_DEFAULT_ATTESTATIONS: '1' })).toEqual({ sbom: {}, defaultOnly: false });
    expect(planAttestations({ sbom: 'true' }, {})).toEqual({ provenance: { mode: 'min' }, sbom: {}, defaultOnly: false });
    expect(planAttestations({ attest: ['type=provenance,mode=max,builder-id=https://ci/1,version=v1'], sbom: 'false' }, {})).toEqual({ provenance: { mode: 'max', builderId: 'https://ci/1' }, defaultOnly: false });
    expect(planAttestations({ attest: ['type=provenance,disabled=true', 'type=sbom,disabled=false'] }, {})).toEqual({ sbom: {}, defaultOnly: false });
  });

  test('attestations hoist cannot make are usage errors naming why: an SBOM generator image, SLSA v0.2', () => {
    expect(() => planAttestations({ sbom: 'generator=docker/buildkit-syft-scanner' }, {})).toThrow(/SBOM generator images are not supported; hoist writes the SPDX SBOM itself/);
    expect(() => planAttestations({ provenance: 'mode=max,version=v0.2' }, {})).toThrow(/SLSA provenance v1 only/);
    expect(() => planAttestations({ provenance: 'mode=max,version=v0.2' }, {})).toThrow(UsageError);
  });

  test('named contexts match as BuildKit matches them: the familiar name without :latest', () => {
    expect(contextKey('alpine')).toBe('alpine');
    expect(contextKey('alpine:latest')).toBe('alpine');
    expect(contextKey('docker.io/library/alpine')).toBe('alpine');
    expect(contextKey('alpine:3.20')).toBe('alpine:3.20');
    expect(contextKey('ghcr.io/org/tool')).toBe('ghcr.io/org/tool');
  });

  test('--load: DOCKER_HOST, else the default socket; none: a usage error naming -o type=docker', () => {
    expect(dockerEndpoint({ DOCKER_HOST: 'tcp://127.0.0.1:2375' }, '/nonexistent.sock')).toEqual({ host: '127.0.0.1', port: 2375 });
    expect(dockerEndpoint({}, '/nonexistent.sock')).toBeUndefined();
    expect(() => requireDockerEndpoint({}, '/nonexistent.sock')).toThrow(/DOCKER_HOST is not set and there is no \/nonexistent\.sock\); write a docker-archive instead with -o type=docker/);
    expect(() => dockerEndpoint({ DOCKER_HOST: 'ssh://me@host' })).toThrow(UsageError);
  });
});
