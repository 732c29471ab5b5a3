/**
 * Attestations (issue 12) on the real registry, read back with skopeo, umoci and plain HTTP:
 * BuildKit's storage (an index with, per image, an attestation manifest of platform
 * unknown/unknown whose in-toto layers carry the SLSA provenance v1 and the SPDX SBOM), on
 * single- and two-platform pushes and in OCI layouts; the SBOM of the Debian fixture app
 * against `dpkg-query -W` run inside the image; the outputs that skip attestations.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { debianTarball, hoist, pushMultiPlatformBusybox, run, startRegistry, storeWithBusybox, tempDir, REPO_ROOT, type RunningRegistry } from '@hoist/testkit';

interface Entry {
  mediaType: string;
  digest: string;
  size: number;
  platform: { os: string; architecture: string; variant?: string };
  annotations?: Record<string, string>;
}
interface Index {
  mediaType: string;
  manifests: Entry[];
}
interface Manifest {
  mediaType: string;
  config: { digest: string };
  layers: Array<{ mediaType: string; digest: string; annotations?: Record<string, string> }>;
}
// statements are free-form JSON
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

const sha = (s: string | Buffer): string => `sha256:${createHash('sha256').update(s).digest('hex')}`;
const PROVENANCE = 'https://slsa.dev/provenance/v1';
const SPDX = 'https://spdx.dev/Document';

describe('attestations: provenance and SBOM as BuildKit stores them', () => {
  let registry: RunningRegistry;
  let root: string;
  let work: string;
  let ctx: string;

  beforeAll(async () => {
    [registry, root, work] = await Promise.all([startRegistry(), storeWithBusybox(), tempDir('attest')]);
    ctx = path.join(work, 'ctx');
    await fsp.mkdir(path.join(ctx, 'app', 'node_modules', 'ms'), { recursive: true });
    await fsp.writeFile(path.join(ctx, 'app', 'node_modules', 'ms', 'package.json'), '{"name":"ms","version":"2.1.3","license":"MIT"}');
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox:latest\nARG VERSION=0\nCOPY app /app\nRUN echo "$VERSION" > /version\n');
  });

  afterAll(async () => {
    await registry?.stop();
    for (const d of [root, work]) if (d) await fsp.rm(d, { recursive: true, force: true });
  });

  async function raw(ref: string): Promise<string> {
    const r = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]);
    expect(r.stderr).toBe('');
    return r.stdout;
  }

  async function blob(repo: string, digest: string): Promise<Buffer> {
    const res = await fetch(`http://${registry.host}/v2/${repo}/blobs/${digest}`);
    expect(res.status).toBe(200);
    const b = Buffer.from(await res.arrayBuffer());
    expect(sha(b)).toBe(digest);
    return b;
  }

  /** The statements of an attestation manifest, checked against BuildKit's layout, by predicate type. */
  async function statements(repo: string, att: Entry, image: Entry): Promise<Map<string, Json>> {
    expect(att.platform).toEqual({ os: 'unknown', architecture: 'unknown' });
    expect(att.annotations).toEqual({ 'vnd.docker.reference.digest': image.digest, 'vnd.docker.reference.type': 'attestation-manifest' });
    const m = JSON.parse(await raw(`${registry.host}/${repo}@${att.digest}`)) as Manifest;
    expect(m.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    const out = new Map<string, Json>();
    for (const l of m.layers) {
      expect(l.mediaType).toBe('application/vnd.in-toto+json');
      const st = JSON.parse((await blob(repo, l.digest)).toString()) as Json;
      expect(st._type).toBe('https://in-toto.io/Statement/v1');
      expect(st.predicateType).toBe(l.annotations?.['in-toto.io/predicate-type']);
      // the subject is the platform image's manifest
      for (const s of st.subject as Array<{ digest: { sha256: string } }>) expect(`sha256:${s.digest.sha256}`).toBe(image.digest);
      out.set(st.predicateType as string, st);
    }
    return out;
  }

  it('single platform, --push --sbom=true --provenance=mode=max: an index of the image and its attestation manifest', async () => {
    const repo = 'att/one';
    const ref = `${registry.host}/${repo}:1`;
    const meta = path.join(work, 'meta.json');
    const r = await hoist(['build', '--root', root, '--progress', 'plain', '--build-arg', 'VERSION=7', '--sbom=true', '--provenance=mode=max',
      '--annotation', 'manifest-descriptor:com.example.note=hi', '--metadata-file', meta, '-t', ref, '--push', ctx]);
    expect(r.stderr).not.toMatch(/WARNING/);
    expect(r.code).toBe(0);
    const text = await raw(ref);
    const idx = JSON.parse(text) as Index;
    // stdout and the metadata file name the index that was pushed
    expect(r.stdout.trim()).toBe(sha(text));
    expect(idx.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(idx.manifests.map((m) => `${m.platform.os}/${m.platform.architecture}`)).toEqual(['linux/amd64', 'unknown/unknown']);
    const [image, att] = idx.manifests as [Entry, Entry];
    expect(image.annotations).toEqual({ 'com.example.note': 'hi' });
    const local = JSON.parse((await hoist(['inspect', '--root', root, ref])).stdout) as { descriptor: { digest: string } };
    expect(local.descriptor.digest).toBe(image.digest);
    const m = JSON.parse(await fsp.readFile(meta, 'utf8')) as Json;
    expect(m['containerimage.digest']).toBe(sha(text));

    const st = await statements(repo, att, image);
    expect([...st.keys()]).toEqual([SPDX, PROVENANCE]);
    const prov = st.get(PROVENANCE)!;
    expect(prov.subject[0].name).toBe(`pkg:docker/${registry.host}/${repo}@1?platform=linux%2Famd64`);
    const def = prov.predicate.buildDefinition;
    expect(def.buildType).toBe('https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md');
    // mode=max: the build args, the Dockerfile, the steps
    expect(def.externalParameters.request).toMatchObject({ frontend: 'dockerfile.v0', args: { 'build-arg:VERSION': '7', filename: 'Dockerfile' } });
    expect(Buffer.from(prov.predicate.runDetails.metadata.buildkit_metadata.source.infos[0].data, 'base64').toString()).toContain('COPY app /app');
    expect(def.internalParameters.buildConfig.steps.map((x: { created_by?: string }) => x.created_by)).toEqual(expect.arrayContaining([expect.stringContaining('COPY app /app')]));
    // the base image, by the digest of the manifest that was used
    const busybox = JSON.parse((await hoist(['inspect', '--root', root, 'busybox:latest'])).stdout) as { descriptor: { digest: string } };
    expect(def.resolvedDependencies).toEqual([{ uri: 'pkg:docker/busybox@latest?platform=linux%2Famd64', digest: { sha256: busybox.descriptor.digest.slice(7) } }]);
    const meta2 = prov.predicate.runDetails.metadata;
    expect(meta2.invocationID).toMatch(/^[a-z0-9]{25}$/);
    expect(Date.parse(meta2.finishedOn)).toBeGreaterThanOrEqual(Date.parse(meta2.startedOn));
    // the SBOM: SPDX 2.3 with the npm package the image holds
    const spdx = st.get(SPDX)!.predicate;
    expect(spdx.spdxVersion).toBe('SPDX-2.3');
    expect(spdx.packages.map((p: Json) => p.externalRefs[0].referenceLocator)).toEqual(['pkg:npm/ms@2.1.3']);
  });

  it('--provenance=false (or BUILDX_NO_DEFAULT_ATTESTATIONS=1): the plain image manifest is pushed, stdout and metadata name it', async () => {
    const meta = path.join(work, 'meta-plain.json');
    const ref = `${registry.host}/att/plain:1`;
    const r = await hoist(['build', '--root', root, '--progress', 'plain', '--provenance=false', '--annotation', 'manifest-descriptor:com.example.note=hi', '--metadata-file', meta, '-t', ref, '--push', ctx]);
    expect(r.code).toBe(0);
    const text = await raw(ref);
    expect((JSON.parse(text) as Manifest).mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(r.stdout.trim()).toBe(sha(text));
    const d = (JSON.parse(await fsp.readFile(meta, 'utf8')) as Json)['containerimage.descriptor'];
    expect(d).toMatchObject({ digest: sha(text), platform: { os: 'linux', architecture: 'amd64' }, annotations: { 'com.example.note': 'hi' } });
    const ref2 = `${registry.host}/att/plain:2`;
    const r2 = await hoist(['build', '--root', root, '--progress', 'plain', '-t', ref2, '--push', ctx], { env: { ...process.env, BUILDX_NO_DEFAULT_ATTESTATIONS: '1' } });
    expect(r2.code).toBe(0);
    expect((JSON.parse(await raw(ref2)) as Manifest).mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
  });

  it('an attested image as a base: FROM picks the platform image, never the attestation manifest', async () => {
    const base = path.join(work, 'on-top');
    await fsp.mkdir(base);
    await fsp.writeFile(path.join(base, 'Dockerfile'), `FROM ${registry.host}/att/one:1\nRUN cat /version > /seen\n`);
    const r = await hoist(['build', '--root', path.join(work, 'other-root'), '--progress', 'plain', '-t', 'on-top:1', base]);
    expect(r.code).toBe(0);
    const out = await hoist(['run', '--root', path.join(work, 'other-root'), 'on-top:1', 'cat', '/seen']);
    expect(out.stdout).toBe('7\n');
  });

  it('outputs that cannot hold attestations skip them without error (-o type=docker); type=local gets BuildKit\'s files only when asked for', async () => {
    const tar = path.join(work, 'docker.tar');
    const r = await hoist(['build', '--root', root, '--progress', 'plain', '--sbom=true', '-t', 'skip:1', '-o', `type=docker,dest=${tar}`, ctx]);
    expect(r.code).toBe(0);
    const manifest = JSON.parse((await run('tar', ['-xOf', tar, 'manifest.json'])).stdout) as Array<{ RepoTags: string[] }>;
    expect(manifest.map((x) => x.RepoTags)).toEqual([['skip:1']]);
    const local = JSON.parse((await hoist(['inspect', '--root', root, 'skip:1'])).stdout) as { descriptor: { digest: string } };
    expect(r.stdout.trim()).toBe(local.descriptor.digest);
    // type=local with --sbom=true: the statements next to the root filesystem, as BuildKit writes them
    const out = path.join(work, 'local-att');
    const l = await hoist(['build', '--root', root, '--progress', 'plain', '--sbom=true', '-o', `type=local,dest=${out}`, ctx]);
    expect(l.code).toBe(0);
    expect(await fsp.readFile(path.join(out, 'version'), 'utf8')).toBe('0\n');
    const sbom = JSON.parse(await fsp.readFile(path.join(out, 'sbom.spdx.json'), 'utf8')) as Json;
    const prov = JSON.parse(await fsp.readFile(path.join(out, 'provenance.json'), 'utf8')) as Json;
    expect([sbom.predicateType, prov.predicateType]).toEqual([SPDX, PROVENANCE]);
    expect(`sha256:${sbom.subject[0].digest.sha256}`).toBe(l.stdout.trim());
    // buildx's default alone writes nothing there: the folder is the image's root filesystem
    const plain = path.join(work, 'local-plain');
    expect((await hoist(['build', '--root', root, '--progress', 'plain', '-o', `type=local,dest=${plain}`, ctx])).code).toBe(0);
    expect((await fsp.readdir(plain)).filter((f) => f.endsWith('.json'))).toEqual([]);
  });

  it('-o type=oci (directory): the layout holds the attested index; skopeo copies it, umoci unpacks the image', async () => {
    const layout = path.join(work, 'layout');
    const r = await hoist(['build', '--root', root, '--progress', 'plain', '--sbom=true', '-t', 'oci-att:1', '-o', `type=oci,dest=${layout}`, ctx]);
    expect(r.code).toBe(0);
    const top = JSON.parse(await fsp.readFile(path.join(layout, 'index.json'), 'utf8')) as Index;
    expect(top.manifests.map((m) => [m.mediaType, m.digest])).toEqual([['application/vnd.oci.image.index.v1+json', r.stdout.trim()]]);
    const ref = 'docker.io/library/oci-att:1';
    const inspected = await run('skopeo', ['inspect', '--raw', `oci:${layout}:${ref}`]);
    const idx = JSON.parse(inspected.stdout) as Index;
    expect(idx.manifests.map((m) => m.platform.architecture)).toEqual(['amd64', 'unknown']);
    const copy = path.join(work, 'copied');
    const cp = await run('skopeo', ['copy', '--all', `oci:${layout}:${ref}`, `oci:${copy}:x`]);
    expect(cp.code).toBe(0);
    expect(sha((await run('skopeo', ['inspect', '--raw', `oci:${copy}:x`])).stdout)).toBe(r.stdout.trim());
    // umoci unpacks the platform image (skopeo picks it out of the index first)
    const single = path.join(work, 'single');
    expect((await run('skopeo', ['copy', `oci:${layout}:${ref}`, `oci:${single}:x`])).code).toBe(0);
    const bundle = path.join(work, 'bundle');
    const un = await run('umoci', ['unpack', '--image', `${single}:x`, bundle]);
    expect(un.stderr).not.toMatch(/error/i);
    expect(await fsp.readFile(path.join(bundle, 'rootfs', 'version'), 'utf8')).toBe('0\n');
  });

  it('an OCI archive with attestations: hoist load keeps the index, fsck finds the in-toto layers sound, hoist push sends them on', async () => {
    const tar = path.join(work, 'att.oci.tar');
    const r = await hoist(['build', '--root', root, '--progress', 'plain', '--sbom=true', '-t', 'arch:1', '-o', `type=oci,dest=${tar}`, ctx]);
    expect(r.code).toBe(0);
    const other = path.join(work, 'load-root');
    expect((await hoist(['load', '--root', other, '-i', tar])).code).toBe(0);
    const fsck = await hoist(['fsck', '--root', other]);
    expect(fsck.stderr).not.toMatch(/ERROR/);
    expect(fsck.code).toBe(0);
    const ref = `${registry.host}/att/loaded:1`;
    const p = await hoist(['push', '--root', other, 'arch:1', ref]);
    expect(p.stderr).not.toMatch(/ERROR/);
    expect(p.code).toBe(0);
    const text = await raw(ref);
    expect(sha(text)).toBe(r.stdout.trim());
    const idx = JSON.parse(text) as Index;
    const st = await statements('att/loaded', idx.manifests[1]!, idx.manifests[0]!);
    expect([...st.keys()]).toEqual([SPDX, PROVENANCE]);
  });

  it('SOURCE_DATE_EPOCH: the image and its SBOM are reproducible; the provenance records each run (as BuildKit)', async () => {
    const env = { ...process.env, SOURCE_DATE_EPOCH: '1700000000' };
    const digests: Array<{ image: string; sbom: string; invocation: string; top: string }> = [];
    for (let n = 0; n < 2; n++) {
      const repo = `att/sde`; // the same name (it is in the subjects), pushed twice
      const r = await hoist(['build', '--root', root, '--no-cache', '--progress', 'plain', '--sbom=true', '-t', `${registry.host}/${repo}:1`, '--push', ctx], { env });
      expect(r.code).toBe(0);
      const idx = JSON.parse(await raw(`${registry.host}/${repo}:1`)) as Index;
      const att = JSON.parse(await raw(`${registry.host}/${repo}@${idx.manifests[1]!.digest}`)) as Manifest;
      const prov = JSON.parse((await blob(repo, att.layers[1]!.digest)).toString()) as Json;
      const sbom = JSON.parse((await blob(repo, att.layers[0]!.digest)).toString()) as Json;
      expect(sbom.predicate.creationInfo.created).toBe('2023-11-14T22:13:20Z');
      digests.push({ image: idx.manifests[0]!.digest, sbom: att.layers[0]!.digest, invocation: prov.predicate.runDetails.metadata.invocationID, top: r.stdout.trim() });
    }
    expect(digests[1]!.image).toBe(digests[0]!.image);
    expect(digests[1]!.sbom).toBe(digests[0]!.sbom);
    expect(digests[1]!.invocation).not.toBe(digests[0]!.invocation);
    expect(digests[1]!.top).not.toBe(digests[0]!.top);
  });

  it('two platforms (amd64 + arm64 busybox): an attestation manifest per platform image, each about its image', async () => {
    const base = await pushMultiPlatformBusybox(root, registry.host);
    const mp = path.join(work, 'mp');
    await fsp.mkdir(mp);
    await fsp.writeFile(path.join(mp, 'Dockerfile'), `FROM ${base}\nCOPY note.txt /note.txt\n`);
    await fsp.writeFile(path.join(mp, 'note.txt'), 'hi\n');
    const repo = 'att/multi';
    const ref = `${registry.host}/${repo}:1`;
    const r = await hoist(['build', '--root', root, '--progress', 'plain', '--platform', 'linux/amd64,linux/arm64', '--sbom=true', '-t', ref, '--push', mp]);
    expect(r.code).toBe(0);
    const text = await raw(ref);
    expect(r.stdout.trim()).toBe(sha(text));
    const idx = JSON.parse(text) as Index;
    expect(idx.manifests.map((m) => `${m.platform.os}/${m.platform.architecture}`)).toEqual(['linux/amd64', 'linux/arm64', 'unknown/unknown', 'unknown/unknown']);
    const [amd, arm, attAmd, attArm] = idx.manifests as [Entry, Entry, Entry, Entry];
    for (const [img, att] of [[amd, attAmd], [arm, attArm]] as const) {
      const st = await statements(repo, att, img);
      expect([...st.keys()]).toEqual([SPDX, PROVENANCE]);
      const plat = `${img.platform.os}/${img.platform.architecture}${img.platform.variant ? `/${img.platform.variant}` : ''}`;
      expect(st.get(PROVENANCE)!.subject[0].name).toBe(`pkg:docker/${registry.host}/${repo}@1?platform=${encodeURIComponent(plat)}`);
      // each platform's provenance lists that platform's base manifest
      const deps = st.get(PROVENANCE)!.predicate.buildDefinition.resolvedDependencies as Array<{ uri: string }>;
      expect(deps.map((d) => d.uri)).toEqual([`pkg:docker/${registry.host}/x/busybox-multi@latest?platform=${encodeURIComponent(plat)}`]);
    }
    // the same invocation for both platforms (one build request)
    const id = async (att: Entry, img: Entry): Promise<string> => (await statements(repo, att, img)).get(PROVENANCE)!.predicate.runDetails.metadata.invocationID as string;
    expect(await id(attArm, arm)).toBe(await id(attAmd, amd));
    // hoist pull takes the host's image out of the index
    const pullRoot = path.join(work, 'pull-root');
    expect((await hoist(['pull', '--root', pullRoot, '--progress', 'quiet', ref])).code).toBe(0);
    expect((JSON.parse((await hoist(['inspect', '--root', pullRoot, ref])).stdout) as { descriptor: { digest: string } }).descriptor.digest).toBe(amd.digest);
  });

  it('the Debian fixture app with --sbom=true: the SPDX packages are what dpkg-query -W lists inside the image', async () => {
    const seed = path.join(work, 'deb-root');
    const imp = await hoist(['import', '--root', seed, await debianTarball(), 'debian:bookworm']);
    expect(imp.code).toBe(0);
    const debian = `${registry.host}/base/debian:bookworm`;
    expect((await hoist(['push', '--root', seed, '--progress', 'quiet', 'debian:bookworm', debian])).code).toBe(0);
    const app = path.join(work, 'debian-app');
    await fsp.cp(path.join(REPO_ROOT, 'fixtures', 'apps', 'debian-multistage'), app, { recursive: true });
    const df = path.join(app, 'Dockerfile');
    await fsp.writeFile(df, (await fsp.readFile(df, 'utf8')).replace(/^FROM debian:bookworm/gm, `FROM ${debian}`));
    const repo = 'att/debapp';
    const ref = `${registry.host}/${repo}:1`;
    const r = await hoist(['build', '--root', seed, '--progress', 'plain', '--sbom=true', '-t', ref, '--push', app], { timeoutMs: 600_000 });
    expect(r.code).toBe(0);
    const idx = JSON.parse(await raw(ref)) as Index;
    const st = await statements(repo, idx.manifests[1]!, idx.manifests[0]!);
    const spdx = st.get(SPDX)!.predicate as { packages: Array<{ name: string; versionInfo: string; externalRefs: Array<{ referenceLocator: string }> }> };
    const listed = spdx.packages.filter((p) => p.externalRefs[0]!.referenceLocator.startsWith('pkg:deb/')).map((p) => `${p.name} ${p.versionInfo}`).sort();
    const q = await hoist(['run', '--root', seed, '--network', 'none', '--entrypoint', '', ref, 'dpkg-query', '-W', '-f', '${Package} ${Version}\\n']);
    expect(q.code).toBe(0);
    const dpkg = q.stdout.trim().split('\n').sort();
    expect(dpkg.length).toBeGreaterThan(50);
    expect(listed).toEqual(dpkg);
    expect(spdx.packages.find((p) => p.name === 'base-files')!.externalRefs[0]!.referenceLocator).toMatch(/^pkg:deb\/debian\/base-files@[^?]+\?arch=amd64&distro=debian-12$/);
  }, 900_000);
});
