/**
 * `hoist build` as a drop-in for `docker buildx build` in CI (issue 12): the argument lists that
 * docker/build-push-action and `docker buildx bake` hand to buildx, the files those tools read
 * afterwards (iidfile, metadata file), and the RUN sandbox flags (--add-host, --shm-size,
 * --ulimit) — on the real registry, read back with skopeo.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { hoist, run, startRegistry, storeWithBusybox, tempDir, type RunningRegistry } from '@hoist/testkit';

const DOCKERFILE = [
  'FROM busybox:latest',
  'LABEL org.opencontainers.image.title="from the Dockerfile" stage=final',
  'RUN cat /etc/hosts > /hosts.txt && df -k /dev/shm | tail -n 1 > /shm.txt && ulimit -Sn > /nofile.txt && ulimit -Hn >> /nofile.txt && ulimit -Su > /nproc.txt',
  'CMD ["cat", "/hosts.txt"]',
  '',
].join('\n');

interface RawManifest {
  config: { digest: string };
  layers: Array<{ digest: string; annotations?: Record<string, string> }>;
  annotations?: Record<string, string>;
}

interface RawIndex {
  mediaType: string;
  manifests: Array<{ digest: string; size: number; platform: { os: string; architecture: string }; annotations?: Record<string, string> }>;
}

const sha = (s: string): string => `sha256:${createHash('sha256').update(s).digest('hex')}`;

describe('buildx flags: CI argument lists, result files, RUN sandbox flags', () => {
  let registry: RunningRegistry;
  let root: string;
  let work: string;
  let ctx: string;

  beforeAll(async () => {
    [registry, root, work] = await Promise.all([startRegistry(), storeWithBusybox(), tempDir('buildx')]);
    ctx = path.join(work, 'ctx');
    await fsp.mkdir(ctx);
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), DOCKERFILE);
  });

  afterAll(async () => {
    await registry?.stop();
    await fsp.rm(root, { recursive: true, force: true });
    await fsp.rm(work, { recursive: true, force: true });
  });

  /** The image manifest a tag names; through the index when attestations made one (its raw JSON as `index`). */
  async function rawManifest(ref: string): Promise<{ raw: string; json: RawManifest; index?: { raw: string; json: RawIndex } }> {
    const r = await run('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${ref}`]);
    expect(r.code).toBe(0);
    const top = JSON.parse(r.stdout) as RawManifest & Partial<RawIndex>;
    if (!top.manifests) return { raw: r.stdout, json: top };
    const image = top.manifests.find((m) => m.platform.os !== 'unknown')!;
    const m = await run('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${ref.replace(/:[^:/]+$/, '')}@${image.digest}`]);
    return { raw: m.stdout, json: JSON.parse(m.stdout) as RawManifest, index: { raw: r.stdout, json: top as RawIndex } };
  }

  /** A blob of the registry, as JSON. */
  async function blobJson(repo: string, digest: string): Promise<Record<string, any>> { // eslint-disable-line @typescript-eslint/no-explicit-any
    const res = await fetch(`http://${registry.host}/v2/${repo}/blobs/${digest}`);
    expect(res.status).toBe(200);
    return (await res.json()) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  }

  async function remoteConfig(ref: string): Promise<{ config: { Labels?: Record<string, string> } }> {
    const r = await run('skopeo', ['inspect', '--tls-verify=false', '--config', `docker://${ref}`]);
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout) as { config: { Labels?: Record<string, string> } };
  }

  it('docker/build-push-action@v6 arguments (metadata-action labels/annotations, push): every file the action reads is right', async () => {
    const tmp = path.join(work, 'docker-actions-toolkit-Ab12Cd');
    await fsp.mkdir(tmp);
    const iid = path.join(tmp, 'build-iidfile-8f2a1c3b4d.txt');
    const meta = path.join(tmp, 'build-metadata-5e6f7a8b9c.json');
    const image = `${registry.host}/acme/app`;
    // what the action runs after `docker/metadata-action` (labels + annotations) with push: true:
    // its build args (annotations, build-args, iidfile, labels, the default provenance
    // attestation of a private repository, tags), then its common args (metadata-file, push),
    // then the context
    const args = [
      'build',
      '--annotation', 'manifest:org.opencontainers.image.created=2024-01-02T03:04:05.000Z',
      '--annotation', 'manifest:org.opencontainers.image.revision=0123456789abcdef',
      '--annotation', 'manifest:org.opencontainers.image.source=https://github.com/acme/app',
      '--build-arg', 'VERSION=1.2.3',
      '--label', 'org.opencontainers.image.created=2024-01-02T03:04:05.000Z',
      '--label', 'org.opencontainers.image.revision=0123456789abcdef',
      '--label', 'org.opencontainers.image.source=https://github.com/acme/app',
      '--label', 'org.opencontainers.image.title=app',
      '--provenance', 'mode=min,inline-only=true,builder-id=https://github.com/acme/app/actions/runs/1234/attempts/1',
      '--tag', `${image}:1.2.3`,
      '--tag', `${image}:latest`,
      '--iidfile', iid,
      '--metadata-file', meta,
      '--push',
      '.',
    ];
    const r = await hoist(['--root', root, ...args], { cwd: ctx });
    expect(r.stderr).not.toMatch(/unknown option/);
    expect(r.code).toBe(0);
    expect(r.stderr).not.toMatch(/attestation/i);

    // the provenance (mode=min, the action's builder-id) is attached: the tag names an index of
    // the image and its attestation manifest, as buildx pushes it
    const { raw, json: manifest, index } = await rawManifest(`${image}:1.2.3`);
    const manifestDigest = sha(raw);
    expect(index?.json.manifests.map((m) => [m.digest, `${m.platform.os}/${m.platform.architecture}`])).toEqual([[manifestDigest, 'linux/amd64'], [expect.any(String), 'unknown/unknown']]);
    const att = (await rawManifest(`${image}@${index!.json.manifests[1]!.digest}`)).json;
    const provenance = await blobJson('acme/app', att.layers[0]!.digest);
    expect(provenance.subject.map((x: { name: string }) => x.name)).toEqual([`pkg:docker/${image}@1.2.3?platform=linux%2Famd64`, `pkg:docker/${image}@latest?platform=linux%2Famd64`]);
    expect(provenance.predicate.runDetails.builder.id).toBe('https://github.com/acme/app/actions/runs/1234/attempts/1');
    // mode=min: no build args
    expect(provenance.predicate.buildDefinition.externalParameters.request.args).toEqual({ filename: 'Dockerfile' });
    const indexDigest = sha(index!.raw);
    // iidfile: the image ID (config digest), no newline — the action's `imageid` output
    expect(await fsp.readFile(iid, 'utf8')).toBe(manifest.config.digest);
    // metadata file: the action's `metadata` output; `digest` is containerimage.digest
    // with attestations buildx reports the index as containerimage.digest/descriptor
    const m = JSON.parse(await fsp.readFile(meta, 'utf8')) as Record<string, unknown>;
    expect(m['containerimage.digest']).toBe(indexDigest);
    expect(m['containerimage.config.digest']).toBe(manifest.config.digest);
    expect(m['image.name']).toBe(`${image}:1.2.3,${image}:latest`);
    expect(m['buildx.build.ref']).toMatch(/^[^/]+\/[^/]+\/[a-z0-9]{25}$/);
    const d = m['containerimage.descriptor'] as { digest: string; size: number; mediaType: string };
    expect(d).toEqual({ mediaType: 'application/vnd.oci.image.index.v1+json', digest: indexDigest, size: Buffer.byteLength(index!.raw) });
    // labels in the config (the flag wins over the Dockerfile's LABEL), annotations on the manifest
    const cfg = await remoteConfig(`${image}:latest`);
    expect(cfg.config.Labels).toEqual({
      stage: 'final',
      'org.opencontainers.image.title': 'app',
      'org.opencontainers.image.created': '2024-01-02T03:04:05.000Z',
      'org.opencontainers.image.revision': '0123456789abcdef',
      'org.opencontainers.image.source': 'https://github.com/acme/app',
    });
    expect(manifest.annotations).toEqual({
      'org.opencontainers.image.created': '2024-01-02T03:04:05.000Z',
      'org.opencontainers.image.revision': '0123456789abcdef',
      'org.opencontainers.image.source': 'https://github.com/acme/app',
    });
    // stdout (without -q) is the digest that was pushed: the index's
    expect(r.stdout.trim()).toBe(indexDigest);
  });

  it('`docker buildx bake --print` target, turned into build flags as bake does: tags, args, labels, annotations, output, shm-size, ulimits', async () => {
    const image = `${registry.host}/acme/bake`;
    // `docker buildx bake --print app` for a docker-bake.hcl target (buildx's JSON shape)
    const printed = {
      group: { default: { targets: ['app'] } },
      target: {
        app: {
          context: ctx,
          dockerfile: 'Dockerfile',
          args: { VERSION: '2' },
          labels: { 'com.example.team': 'build' },
          tags: [`${image}:2`],
          annotations: ['manifest:com.example.pipeline=bake'],
          'shm-size': '128m',
          ulimits: ['nofile=1024:2048'],
          output: ['type=registry'],
        },
      },
    };
    const t = printed.target.app;
    const args = [
      'build',
      '--file', path.join(t.context, t.dockerfile),
      ...Object.entries(t.args).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]),
      ...Object.entries(t.labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]),
      ...t.tags.flatMap((x) => ['--tag', x]),
      ...t.annotations.flatMap((x) => ['--annotation', x]),
      '--shm-size', t['shm-size'],
      ...t.ulimits.flatMap((x) => ['--ulimit', x]),
      ...t.output.flatMap((x) => ['--output', x]),
      t.context,
    ];
    const r = await hoist(['--root', root, ...args]);
    expect(r.code).toBe(0);
    const { json } = await rawManifest(`${image}:2`);
    expect(json.annotations).toEqual({ 'com.example.pipeline': 'bake' });
    expect((await remoteConfig(`${image}:2`)).config.Labels?.['com.example.team']).toBe('build');
  });

  it('--add-host (with host-gateway), --shm-size and --ulimit reach the RUN sandbox', async () => {
    const out = path.join(work, 'rootfs');
    const r = await hoist(['build', '--root', root, '--progress', 'plain', '--no-cache',
      '--add-host', 'db.internal:10.1.2.3', '--add-host', 'gw:host-gateway', '--add-host', 'v6:[fd00::7]',
      '--shm-size', '96m', '--ulimit', 'nofile=1024:2048', '--ulimit', 'nproc=300',
      '-o', `type=local,dest=${out}`, ctx]);
    expect(r.code).toBe(0);
    const hosts = await fsp.readFile(path.join(out, 'hosts.txt'), 'utf8');
    expect(hosts).toMatch(/^10\.1\.2\.3\tdb\.internal$/m);
    expect(hosts).toMatch(/^fd00::7\tv6$/m);
    expect(hosts).toMatch(/^\d+\.\d+\.\d+\.\d+\tgw$/m);
    expect(hosts).not.toContain('host-gateway');
    expect(hosts).toMatch(/^127\.0\.0\.1\tlocalhost/m);
    // df -k: the size column of the tmpfs at /dev/shm, in KiB
    const shm = (await fsp.readFile(path.join(out, 'shm.txt'), 'utf8')).trim().split(/\s+/);
    expect(shm[1]).toBe(String(96 * 1024));
    expect(await fsp.readFile(path.join(out, 'nofile.txt'), 'utf8')).toBe('1024\n2048\n');
    expect(await fsp.readFile(path.join(out, 'nproc.txt'), 'utf8')).toBe('300\n');
  });

  it('without the flags, RUN keeps Docker\'s defaults (64 MiB /dev/shm, no extra hosts)', async () => {
    const out = path.join(work, 'rootfs-default');
    const r = await hoist(['build', '--root', root, '--progress', 'plain', '--no-cache', '-o', `type=local,dest=${out}`, ctx]);
    expect(r.code).toBe(0);
    const shm = (await fsp.readFile(path.join(out, 'shm.txt'), 'utf8')).trim().split(/\s+/);
    expect(shm[1]).toBe(String(64 * 1024));
    expect((await fsp.readFile(path.join(out, 'hosts.txt'), 'utf8')).trim().split('\n')).toHaveLength(2);
  });

  it('--provenance=false and --sbom=false are accepted silently (nothing to attach)', async () => {
    const r = await hoist(['build', '--root', root, '--progress', 'plain', '--provenance=false', '--sbom=false', '--attest', 'type=provenance,disabled=true', ctx]);
    expect(r.code).toBe(0);
    expect(r.stderr).not.toContain('attestations');
  });

  it('-q prints the image ID (config digest) as docker buildx build -q, the same as --iidfile', async () => {
    const iid = path.join(work, 'q-iid');
    const r = await hoist(['build', '--root', root, '-q', '-t', 'q-app:1', '--iidfile', iid, ctx]);
    expect(r.code).toBe(0);
    const inspect = await hoist(['inspect', '--root', root, 'q-app:1']);
    const configDigest = (JSON.parse(inspect.stdout) as { manifest: { config: { digest: string } } }).manifest.config.digest;
    expect(r.stdout).toBe(`${configDigest}\n`);
    expect(await fsp.readFile(iid, 'utf8')).toBe(configDigest);
  });

  it.each([
    [['--ulimit', 'nofiles=10'], /unknown resource "nofiles"; valid: core, cpu, .*nofile, nproc/],
    [['--ulimit', 'nofile=20:10'], /soft limit 20 is above the hard limit 10/],
    [['--ulimit', 'nofile=lots'], /expected nofile=SOFT\[:HARD\]/],
    [['--add-host', 'db'], /expected HOST:IP/],
    [['--add-host', 'db:not-an-ip'], /not an IP address or host-gateway/],
    [['--shm-size', 'big'], /--shm-size "big": expected a size/],
    [['--annotation', 'layer:k=v'], /unknown type "layer"; valid: manifest, index, manifest-descriptor, index-descriptor/],
    [['--annotation', 'index:k=v'], /single-platform build produces one image manifest/],
    [['--label', '=v'], /--label "=v": expected KEY=VALUE/],
    [['--provenance', 'mode=full'], /provenance mode "full" is not valid; valid: min, max/],
    [['--attest', 'type=vex'], /--attest "type=vex": type "vex" is not valid; valid: provenance, sbom/],
    [['--sbom', 'generator'], /--sbom "generator": expected KEY=VALUE pairs/],
    [['--sbom', 'generator=docker/buildkit-syft-scanner'], /SBOM generator images are not supported; hoist writes the SPDX SBOM itself/],
    [['--provenance', 'mode=max,version=v0.2'], /hoist writes SLSA provenance v1 only; valid: v1/],
    [['--iidfile', '/nonexistent-dir/iid'], /--iidfile \/nonexistent-dir\/iid: directory \/nonexistent-dir does not exist/],
  ])('bad value %j: exit 2 with the reason, before anything is built', async (flags, message) => {
    const r = await hoist(['build', '--root', root, ...flags, ctx]);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.code).toBe(2);
  });
});
