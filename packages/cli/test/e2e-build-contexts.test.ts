/**
 * `--build-context NAME=…` (issue 12): a directory, docker-image://, oci-layout:// and a git URL
 * (served over loopback HTTP, git's dumb protocol), used by FROM, COPY --from and
 * RUN --mount from=; a named context overrides a stage of the same name, as in BuildKit.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { HOIST_BIN, hoist, run, startRegistry, storeWithBusybox, tempDir, type RunningRegistry } from '@hoist/testkit';

const GIT_ENV = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.com' };

/** Serves files below `root` (git's dumb HTTP protocol works on a bare repo after update-server-info). */
async function staticServer(root: string): Promise<{ host: string; requests: string[]; stop(): Promise<void> }> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const parts = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).split('/').filter((p) => p && p !== '..');
    requests.push(parts.join('/'));
    const file = path.join(root, ...parts);
    fsp.stat(file).then(
      (st) => {
        if (!st.isFile()) throw new Error('not a file');
        res.writeHead(200, { 'content-length': st.size });
        createReadStream(file).pipe(res);
      },
    ).catch(() => {
      res.writeHead(404);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function git(args: string[], cwd: string): Promise<void> {
  const r = await run('git', args, { cwd, env: GIT_ENV });
  if (r.code !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
}

describe('--build-context', () => {
  let registry: RunningRegistry;
  let root: string;
  let work: string;
  let server: Awaited<ReturnType<typeof staticServer>>;
  let layout: string;

  beforeAll(async () => {
    [registry, root, work] = await Promise.all([startRegistry(), storeWithBusybox(), tempDir('contexts')]);
    // a directory context
    await fsp.mkdir(path.join(work, 'tools'));
    await fsp.writeFile(path.join(work, 'tools', 'tool.txt'), 'from the tools dir\n');
    // an OCI layout holding an image tagged v1 (pushed, then copied by skopeo)
    const lctx = path.join(work, 'lctx');
    await fsp.mkdir(lctx);
    await fsp.writeFile(path.join(lctx, 'Dockerfile'), 'FROM busybox:latest\nRUN echo from the layout > /etc/layout-marker\n');
    const pushed = await hoist(['build', '--root', root, '-t', `${registry.host}/ctx/layout:1`, '--push', lctx]);
    if (pushed.code !== 0) throw new Error(pushed.stderr);
    layout = path.join(work, 'layout');
    const cp = await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${registry.host}/ctx/layout:1`, `oci:${layout}:v1`]);
    if (cp.code !== 0) throw new Error(cp.stderr);
    // a git repository on loopback HTTP: branch main has sub/readme.txt
    const repo = path.join(work, 'repo');
    await fsp.mkdir(path.join(repo, 'sub'), { recursive: true });
    await git(['init', '-q', '-b', 'main'], repo);
    await fsp.writeFile(path.join(repo, 'sub', 'readme.txt'), 'from git\n');
    await fsp.writeFile(path.join(repo, 'sub', 'Dockerfile'), 'FROM busybox:latest\nCOPY readme.txt /ctx/\n');
    await git(['add', '-A'], repo);
    await git(['commit', '-q', '-m', 'one'], repo);
    await fsp.mkdir(path.join(work, 'www'));
    await git(['clone', '-q', '--bare', repo, path.join(work, 'www', 'repo.git')], work);
    await git(['update-server-info'], path.join(work, 'www', 'repo.git'));
    server = await staticServer(path.join(work, 'www'));
    await fsp.mkdir(path.join(work, 'plain'));
    await fsp.writeFile(path.join(work, 'plain', 'Dockerfile'), 'FROM busybox:latest\n');
  });

  afterAll(async () => {
    await server?.stop();
    await registry?.stop();
    await fsp.rm(root, { recursive: true, force: true });
    await fsp.rm(work, { recursive: true, force: true });
  });

  it('FROM, COPY --from and RUN --mount from= read named contexts of every kind; a context overrides the stage of its name', async () => {
    const ctx = path.join(work, 'app');
    await fsp.mkdir(ctx);
    await fsp.writeFile(
      path.join(ctx, 'Dockerfile'),
      [
        'FROM busybox:latest AS base',
        'RUN echo from the stage > /which',
        'FROM base',
        'COPY --from=tools /tool.txt /got/tool.txt',
        'COPY --from=layout /etc/layout-marker /got/layout.txt',
        'RUN --mount=from=gitctx,target=/g cat /g/readme.txt > /got/git.txt',
        'RUN (cat /which 2>/dev/null || echo no stage) > /got/which.txt',
        '',
      ].join('\n'),
    );
    const out = path.join(work, 'out');
    const r = await hoist([
      'build', '--root', root, '--progress', 'plain',
      '--build-context', 'base=docker-image://busybox:latest',
      '--build-context', `tools=${path.join(work, 'tools')}`,
      '--build-context', `layout=oci-layout://${layout}:v1`,
      '--build-context', `gitctx=http://${server.host}/repo.git#main:sub`,
      '-o', `type=local,dest=${out}`, ctx,
    ]);
    expect(r.stderr).not.toMatch(/ERROR/);
    expect(r.code).toBe(0);
    expect(await fsp.readFile(path.join(out, 'got', 'tool.txt'), 'utf8')).toBe('from the tools dir\n');
    expect(await fsp.readFile(path.join(out, 'got', 'layout.txt'), 'utf8')).toBe('from the layout\n');
    expect(await fsp.readFile(path.join(out, 'got', 'git.txt'), 'utf8')).toBe('from git\n');
    // `FROM base` is busybox itself: the stage named base never ran
    expect(await fsp.readFile(path.join(out, 'got', 'which.txt'), 'utf8')).toBe('no stage\n');
    expect(r.stderr).not.toContain('echo from the stage');
    expect(server.requests.some((p) => p.startsWith('repo.git/'))).toBe(true);
  });

  it('FROM a directory context gives its files as the root filesystem', async () => {
    const ctx = path.join(work, 'fromdir');
    await fsp.mkdir(ctx);
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM tools\nCOPY Dockerfile /copied\n');
    const out = path.join(work, 'out-dir');
    const r = await hoist(['build', '--root', root, '--build-context', `tools=${path.join(work, 'tools')}`, '-o', `type=local,dest=${out}`, ctx]);
    expect(r.code).toBe(0);
    expect((await fsp.readdir(out)).sort()).toEqual(['copied', 'tool.txt']);
  });

  it('a directory context\'s files are 0:0 in the build, whoever owns them on the host (as BuildKit sends them)', async () => {
    const owned = path.join(work, 'owned');
    await fsp.mkdir(path.join(owned, 'sub'), { recursive: true });
    await fsp.writeFile(path.join(owned, 'sub', 'f'), 'owned\n');
    for (const p of [path.join(owned, 'sub'), path.join(owned, 'sub', 'f')]) await fsp.chown(p, 4321, 4322);
    const ctx = path.join(work, 'owned-app');
    await fsp.mkdir(ctx);
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox:latest\nCOPY --from=owned /sub /sub\nRUN stat -c "%n %u:%g" /sub /sub/f > /owners\n');
    const out = path.join(work, 'out-owned');
    const r = await hoist(['build', '--root', root, '--build-context', `owned=${owned}`, '-o', `type=local,dest=${out}`, ctx]);
    expect(r.code).toBe(0);
    expect(await fsp.readFile(path.join(out, 'owners'), 'utf8')).toBe('/sub 0:0\n/sub/f 0:0\n');
  });

  it('an http(s) URL that is not a git repository is one file, as BuildKit\'s HTTP source gives it (mode 0600, 0:0)', async () => {
    await fsp.mkdir(path.join(work, 'www', 'files'), { recursive: true });
    await fsp.writeFile(path.join(work, 'www', 'files', 'notes.txt'), 'served over http\n');
    const ctx = path.join(work, 'http-app');
    await fsp.mkdir(ctx);
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox:latest\nCOPY --from=dl /notes.txt /got/notes.txt\nRUN stat -c "%a %u:%g" /got/notes.txt > /got/stat\n');
    const out = path.join(work, 'out-http');
    const r = await hoist(['build', '--root', root, '--build-context', `dl=http://${server.host}/files/notes.txt`, '-o', `type=local,dest=${out}`, ctx]);
    expect(r.stderr).not.toMatch(/ERROR/);
    expect(r.code).toBe(0);
    expect(await fsp.readFile(path.join(out, 'got', 'notes.txt'), 'utf8')).toBe('served over http\n');
    expect(await fsp.readFile(path.join(out, 'got', 'stat'), 'utf8')).toBe('600 0:0\n');
    const missing = await hoist(['build', '--root', root, '--build-context', `dl=http://${server.host}/files/absent.txt`, ctx]);
    expect(missing.stderr).toContain(`--build-context dl=http://${server.host}/files/absent.txt: HTTP 404`);
    expect(missing.code).toBe(1);
  });

  it.each([
    [['--build-context', 'nothing'], /--build-context "nothing": expected NAME=VALUE/],
    [['--build-context', 'x=/nonexistent/dir'], /--build-context x: \/nonexistent\/dir is not a directory/],
    [['--build-context', 'x=ftp://host/file.tar'], /unsupported URL; valid: a directory, docker-image:\/\/REF, oci-layout:\/\/PATH\[:TAG\], a git URL .* or an http\(s\) URL/],
    [['--build-context', 'x=docker-image://has space'], /--build-context x: invalid image reference "has space"/],
  ])('bad value %j: exit 2', async (flags, message) => {
    const r = await hoist(['build', '--root', root, ...flags, path.join(work, 'plain')]);
    expect(r.stderr).toMatch(message);
    expect(r.code).toBe(2);
  });

  describe('the build context from stdin, a tarball or a git URL', () => {
    let appCtx: string;
    beforeAll(async () => {
      appCtx = path.join(work, 'tarctx');
      await fsp.mkdir(path.join(appCtx, 'docker'), { recursive: true });
      await fsp.writeFile(path.join(appCtx, 'docker', 'Containerfile'), 'FROM busybox:latest\nCOPY data.txt /ctx/\n');
      await fsp.writeFile(path.join(appCtx, 'data.txt'), 'from the tar context\n');
    });

    async function tarOf(dir: string, file: string, compress: string[]): Promise<Buffer> {
      const r = await run('tar', [...compress, '-c', '-f', file, '-C', dir, '.']);
      if (r.code !== 0) throw new Error(r.stderr);
      return fsp.readFile(file);
    }

    it('- with a tar on stdin: the archive is the context (-f is a path inside it)', async () => {
      const tar = await tarOf(appCtx, path.join(work, 'ctx.tar'), []);
      const out = path.join(work, 'out-stdin-tar');
      const r = await run(process.execPath, [HOIST_BIN, 'build', '--root', root, '-f', 'docker/Containerfile', '-o', `type=local,dest=${out}`, '-'], { input: tar });
      expect(r.stderr).not.toMatch(/ERROR/);
      expect(r.code).toBe(0);
      expect(await fsp.readFile(path.join(out, 'ctx', 'data.txt'), 'utf8')).toBe('from the tar context\n');
    });

    it('- with a bare Dockerfile on stdin: an empty context', async () => {
      const out = path.join(work, 'out-stdin-df');
      const r = await run(process.execPath, [HOIST_BIN, 'build', '--root', root, '-o', `type=local,dest=${out}`, '-'], { input: 'FROM busybox:latest\nRUN ls -A /ctx 2>/dev/null | wc -l > /count; echo stdin > /marker\n' });
      expect(r.code).toBe(0);
      expect(await fsp.readFile(path.join(out, 'marker'), 'utf8')).toBe('stdin\n');
      expect((await fsp.readFile(path.join(out, 'count'), 'utf8')).trim()).toBe('0');
    });

    it('- and -f - together: exit 2', async () => {
      const r = await run(process.execPath, [HOIST_BIN, 'build', '--root', root, '-f', '-', '-'], { input: 'FROM busybox:latest\n' });
      expect(r.stderr).toMatch(/cannot both come from stdin/);
      expect(r.code).toBe(2);
    });

    it('a gzip tarball path is the context', async () => {
      const file = path.join(work, 'ctx.tar.gz');
      await tarOf(appCtx, file, ['-z']);
      const out = path.join(work, 'out-tgz');
      const r = await hoist(['build', '--root', root, '-f', 'docker/Containerfile', '-o', `type=local,dest=${out}`, file]);
      expect(r.code).toBe(0);
      expect(await fsp.readFile(path.join(out, 'ctx', 'data.txt'), 'utf8')).toBe('from the tar context\n');
    });

    it('a tarball context where tar cannot be run (not on PATH): exit 1, and nothing left in TMPDIR (from a path or from stdin)', async () => {
      const file = path.join(work, 'ctx-notar.tar');
      const tar = await tarOf(appCtx, file, []);
      const tmp = path.join(work, 'tmp-notar');
      await fsp.mkdir(tmp);
      const env = { ...process.env, NO_COLOR: '1', PATH: '/nonexistent', TMPDIR: tmp };
      for (const [arg, input] of [[file, ''], ['-', tar]] as const) {
        const r = await run(process.execPath, [HOIST_BIN, 'build', '--root', root, '-f', 'docker/Containerfile', arg], { env, input });
        expect(r.stderr).toMatch(/spawn tar ENOENT/);
        expect(r.code).toBe(1);
        expect(await fsp.readdir(tmp)).toEqual([]);
      }
    });

    it('a git URL with #ref:subdir is cloned (over loopback HTTP) and built', async () => {
      const out = path.join(work, 'out-git');
      const before = server.requests.length;
      const r = await hoist(['build', '--root', root, '-o', `type=local,dest=${out}`, `http://${server.host}/repo.git#main:sub`]);
      expect(r.code).toBe(0);
      expect(await fsp.readFile(path.join(out, 'ctx', 'readme.txt'), 'utf8')).toBe('from git\n');
      expect(server.requests.length).toBeGreaterThan(before);
    });

    it('a git URL context in the provenance: configSource with the URL and the commit, also a resolved dependency', async () => {
      const layout = path.join(work, 'git-layout');
      const url = `http://${server.host}/repo.git#main:sub`;
      const r = await hoist(['build', '--root', root, '--provenance=mode=min', '-o', `type=oci,dest=${layout}`, url]);
      expect(r.code).toBe(0);
      const blob = async (d: string): Promise<Record<string, any>> => JSON.parse(await fsp.readFile(path.join(layout, 'blobs', 'sha256', d.slice(7)), 'utf8')) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
      const top = await blob(r.stdout.trim());
      const att = await blob(top.manifests[1].digest);
      const prov = await blob(att.layers[0].digest);
      const commit = (await run('git', ['rev-parse', 'main'], { cwd: path.join(work, 'repo') })).stdout.trim();
      expect(prov.predicate.buildDefinition.externalParameters.configSource).toEqual({ uri: url, digest: { sha1: commit }, path: 'Dockerfile' });
      expect(prov.predicate.buildDefinition.resolvedDependencies[0]).toEqual({ uri: url, digest: { sha1: commit } });
      expect(prov.predicate.buildDefinition.externalParameters.request.locals).toEqual([]);
    });

    it('an http URL of a gzip tarball is downloaded and unpacked as the context; of a plain-text file, it is the Dockerfile', async () => {
      await fsp.mkdir(path.join(work, 'www', 'ctx'), { recursive: true });
      await tarOf(appCtx, path.join(work, 'www', 'ctx', 'app.tar.gz'), ['-z']);
      const out = path.join(work, 'out-url-tgz');
      const r = await hoist(['build', '--root', root, '-f', 'docker/Containerfile', '-o', `type=local,dest=${out}`, `http://${server.host}/ctx/app.tar.gz`]);
      expect(r.stderr).not.toMatch(/ERROR/);
      expect(r.code).toBe(0);
      expect(await fsp.readFile(path.join(out, 'ctx', 'data.txt'), 'utf8')).toBe('from the tar context\n');
      await fsp.writeFile(path.join(work, 'www', 'ctx', 'Dockerfile'), 'FROM busybox:latest\nRUN echo from a url > /marker\n');
      const outDf = path.join(work, 'out-url-df');
      const df = await hoist(['build', '--root', root, '-o', `type=local,dest=${outDf}`, `http://${server.host}/ctx/Dockerfile`]);
      expect(df.code).toBe(0);
      expect(await fsp.readFile(path.join(outDf, 'marker'), 'utf8')).toBe('from a url\n');
    });

    it('an http URL context in the provenance: configSource with the URL and the sha256 of what was fetched, also a resolved dependency', async () => {
      const tgz = path.join(work, 'www', 'ctx', 'prov.tar.gz');
      await fsp.mkdir(path.dirname(tgz), { recursive: true });
      const bytes = await tarOf(appCtx, tgz, ['-z']);
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      const url = `http://${server.host}/ctx/prov.tar.gz`;
      const layout = path.join(work, 'url-layout');
      const r = await hoist(['build', '--root', root, '--provenance=mode=min', '-f', 'docker/Containerfile', '-o', `type=oci,dest=${layout}`, url]);
      expect(r.code).toBe(0);
      const blob = async (d: string): Promise<Record<string, any>> => JSON.parse(await fsp.readFile(path.join(layout, 'blobs', 'sha256', d.slice(7)), 'utf8')) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
      const top = await blob(r.stdout.trim());
      const prov = await blob((await blob(top.manifests[1].digest)).layers[0].digest);
      expect(prov.predicate.buildDefinition.externalParameters.configSource).toEqual({ uri: url, digest: { sha256 }, path: 'docker/Containerfile' });
      expect(prov.predicate.buildDefinition.resolvedDependencies[0]).toEqual({ uri: url, digest: { sha256 } });
    });

    it('a file that is not an archive: exit 2', async () => {
      const r = await hoist(['build', '--root', root, path.join(appCtx, 'data.txt')]);
      expect(r.stderr).toMatch(/is a file but not a tar archive/);
      expect(r.code).toBe(2);
    });
  });
});
