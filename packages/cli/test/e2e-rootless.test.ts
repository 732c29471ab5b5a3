/**
 * Rootless builds (issue 10, mode 1), for real: fresh unprivileged users (useradd; one with
 * /etc/subuid and /etc/subgid ranges, one without) run the built CLI with no flag, their store
 * in $XDG_DATA_HOME/hoist. Bases are imported from tarballs that root makes, the same files root
 * imports, so root and rootless builds can be compared digest for digest.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { createTestUser, debianTarball, hoist, run, startRegistry, tempDir, REPO_ROOT, type RunningRegistry, type TestUser } from '@hoist/testkit';

const HELLO = path.join(REPO_ROOT, 'fixtures', 'hello');
const APP = path.join(REPO_ROOT, 'fixtures', 'apps', 'debian-multistage');
const SDE = { SOURCE_DATE_EPOCH: '1700000000' };

async function must(p: Promise<{ code: number; stdout: string; stderr: string }>, what: string): Promise<string> {
  const r = await p;
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** Owner and name of every member of a gzip layer blob, from GNU tar's listing. */
async function layerOwners(blob: string): Promise<Map<string, string>> {
  const out = await must(run('tar', ['--numeric-owner', '-tvzf', blob]), 'tar -tv');
  const m = new Map<string, string>();
  for (const line of out.split('\n').filter(Boolean)) {
    const f = line.split(/\s+/);
    m.set(f.slice(5).join(' ').replace(/\/$/, ''), f[1]!);
  }
  return m;
}

describe('rootless: an ordinary user builds with no flag', () => {
  let registry: RunningRegistry;
  let work: string;
  let rootStore: string;
  let user: TestUser;
  let single: TestUser;
  let tunOpen: boolean;
  let storeOf: (u: TestUser) => string;
  let helloAsRoot = '';

  beforeAll(async () => {
    [registry, work, rootStore] = await Promise.all([startRegistry(), tempDir('rootless'), tempDir('rootless-root')]);
    await fsp.chmod(work, 0o755);
    // bases as tarballs: busybox (owners 0 and 1000, as fixtures/base/busybox.sh makes it),
    // the same tree owned by root only, and debootstrap's Debian (shared test cache)
    await must(run('bash', [path.join(REPO_ROOT, 'fixtures', 'base', 'busybox.sh'), '--rootfs', path.join(work, 'bb')]), 'busybox.sh');
    await must(run('tar', ['--numeric-owner', '--sort=name', '-C', path.join(work, 'bb'), '-cf', path.join(work, 'busybox.tar'), '.']), 'tar');
    await must(run('tar', ['--numeric-owner', '--sort=name', '--owner=0', '--group=0', '-C', path.join(work, 'bb'), '-cf', path.join(work, 'rootbox.tar'), '.']), 'tar');
    const deb = await debianTarball();
    await fsp.link(deb, path.join(work, 'debian.tar')).catch(() => fsp.copyFile(deb, path.join(work, 'debian.tar')));
    [user, single] = await Promise.all([createTestUser({ subids: true }), createTestUser({ subids: false })]);
    // slirp4netns needs /dev/net/tun; some hosts keep it from users (mode 0600): RUN then shares the host network
    tunOpen = (await user.run('sh', ['-c', 'test -r /dev/net/tun && test -w /dev/net/tun'])).code === 0;
    storeOf = (u) => path.join(u.home, '.local', 'share', 'hoist');
    for (const [tar, ref] of [['busybox.tar', 'busybox:latest'], ['debian.tar', 'debian:bookworm']]) {
      await must(user.hoist(['import', path.join(work, tar!), ref!], { env: SDE }), `import ${ref} as ${user.name}`);
      await must(hoist(['import', '--root', rootStore, path.join(work, tar!), ref!], { env: SDE }), `import ${ref} as root`);
    }
    await must(single.hoist(['import', path.join(work, 'rootbox.tar'), 'rootbox:latest']), 'import rootbox');
    await must(single.hoist(['import', path.join(work, 'busybox.tar'), 'busybox:latest']), 'import busybox');
  }, 600_000);

  afterAll(async () => {
    await registry?.stop();
    await user?.remove();
    await single?.remove();
    await fsp.rm(work, { recursive: true, force: true });
    await fsp.rm(rootStore, { recursive: true, force: true });
  });

  it('builds fixtures/hello, names the mode, runs it, and gets the digest root gets', async () => {
    const r = await user.hoist(['build', '--progress', 'plain', '-t', 'hello:1', HELLO], { env: SDE });
    const warnings = r.stderr.match(/WARNING: .*/g) ?? [];
    expect(warnings).toEqual(tunOpen ? [] : [expect.stringContaining('rootless: /dev/net/tun is not open to your user, so slirp4netns cannot give RUN its own network namespace; RUN uses the host network')]);
    expect(r.code).toBe(0);
    const [sub] = user.subuids;
    expect(r.stderr).toContain(`isolation: rootless (runc in a user namespace: uid 0 = host uid ${user.uid}, uids 1-65536 = host ${sub!.start}-${sub!.start + 65535})`);
    expect(r.stderr).toContain('snapshots: overlay (kernel overlayfs inside the user namespace, userxattr)');
    expect((await fsp.stat(path.join(storeOf(user), 'oci'))).uid).toBe(user.uid);
    const asRoot = await hoist(['build', '--root', rootStore, '--progress', 'plain', HELLO], { env: SDE });
    expect(asRoot.code).toBe(0);
    helloAsRoot = asRoot.stdout.trim();
    expect(r.stdout.trim()).toBe(helloAsRoot);
    const out = await user.hoist(['run', 'hello:1']);
    expect(out.stdout).toBe('Hello from hoist!\nbuilt by hoist as uid 0\nrunning as app\n');
    expect(out.code).toBe(0);
  });

  it('with the copy snapshot driver too (HOIST_SNAPSHOTTER=copy), the digest root gets', async () => {
    const store = path.join(user.home, 'copy-store');
    await must(user.hoist(['import', '--root', store, path.join(work, 'busybox.tar'), 'busybox:latest'], { env: SDE }), 'import');
    const r = await user.hoist(['build', '--root', store, '--progress', 'plain', '-t', 'hello:copy', HELLO], { env: { ...SDE, HOIST_SNAPSHOTTER: 'copy' } });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/isolation: rootless .*; snapshots: copy\n/);
    expect(r.stdout.trim()).toBe(helloAsRoot);
    const out = await user.hoist(['run', '--root', store, 'hello:copy'], { env: { HOIST_SNAPSHOTTER: 'copy' } });
    expect(out.stdout).toBe('Hello from hoist!\nbuilt by hoist as uid 0\nrunning as app\n');
  });

  it('builds the Debian multi-stage app (useradd, chown) with the same digest as root, then fully cached', async () => {
    const r = await user.hoist(['build', '--progress', 'plain', '-t', 'app:1', APP], { env: SDE });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/RUN useradd --create-home/);
    const asRoot = await hoist(['build', '--root', rootStore, '--progress', 'plain', APP], { env: SDE });
    expect(asRoot.code).toBe(0);
    expect(r.stdout.trim()).toBe(asRoot.stdout.trim());

    const again = await user.hoist(['build', '--progress', 'plain', '-t', 'app:1', APP], { env: SDE });
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/\(0 steps run, \d+ cached\)/);
    expect(again.stdout).toBe(r.stdout);
    const ran = await user.hoist(['run', '--entrypoint', '', 'app:1', 'sh', '-c', 'id -u; stat -c %u:%g /var/lib/app']);
    expect(ran.stdout).toBe('1001\n1001:1001\n');
  });

  it('apt-get installs from a local repository, dropping to _apt (sandboxed)', async () => {
    const ctx = await fsp.mkdtemp(path.join(work, 'apt-'));
    // offline: a one-package repository made inside the build, fetched by apt's copy: method
    const df = [
      'FROM debian:bookworm',
      'RUN rm -f /etc/apt/sources.list /etc/apt/sources.list.d/* \\',
      ' && mkdir -p /repo /tmp/pkg/DEBIAN /tmp/pkg/usr/share/hello-rootless \\',
      " && printf 'Package: hello-rootless\\nVersion: 1.0\\nArchitecture: all\\nMaintainer: t <t@example.org>\\nDescription: t\\n' > /tmp/pkg/DEBIAN/control \\",
      ' && echo hi > /tmp/pkg/usr/share/hello-rootless/hi && dpkg-deb --root-owner-group --build /tmp/pkg /repo/h_1.0_all.deb >/dev/null \\',
      ' && { cat /tmp/pkg/DEBIAN/control; echo "Filename: ./h_1.0_all.deb"; echo "Size: $(stat -c %s /repo/h_1.0_all.deb)"; \\',
      '      echo "SHA256: $(sha256sum /repo/h_1.0_all.deb | cut -d" " -f1)"; } > /repo/Packages \\',
      " && echo 'deb [trusted=yes] copy:/repo ./' > /etc/apt/sources.list.d/local.list \\",
      ' && apt-get update && apt-get install -y hello-rootless',
      '',
    ].join('\n');
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), df);
    await fsp.chmod(ctx, 0o755);
    const r = await user.hoist(['build', '--progress', 'plain', '-t', 'apt:1', ctx]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('Setting up hello-rootless (1.0)');
    // apt warns "Download is performed unsandboxed as root" when it cannot drop to _apt
    expect(r.stderr).not.toMatch(/unsandboxed/i);
    const out = await user.hoist(['run', 'apt:1', 'cat', '/usr/share/hello-rootless/hi']);
    expect(out.stdout).toBe('hi\n');
  });

  it("--network none gets its own network namespace; the default is slirp4netns's, or the host's where /dev/net/tun is closed to the user", async () => {
    const ctx = await fsp.mkdtemp(path.join(work, 'net-'));
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox\nRUN --network=none ls /sys/class/net > /none\nRUN ls /sys/class/net > /host\n');
    await fsp.chmod(ctx, 0o755);
    const r = await user.hoist(['build', '-q', '-t', 'net:1', ctx]);
    expect(r.code).toBe(0);
    const out = await user.hoist(['run', 'net:1', 'cat', '/none', '/host']);
    const defaultNets = tunOpen ? ['lo', 'tap0'] : (await fsp.readdir('/sys/class/net')).sort();
    expect(out.stdout).toBe(`lo\n${defaultNets.join('\n')}\n`);
    // --network none for the whole build: the default RUN gets no network either
    const none = await user.hoist(['build', '-q', '--network', 'none', '-t', 'net:2', ctx]);
    expect(none.code).toBe(0);
    expect((await user.hoist(['run', 'net:2', 'cat', '/host'])).stdout).toBe('lo\n');
  });

  it('a file a RUN chowns to 42 is uid 42 in the layer tar, whatever host id it has on disk', async () => {
    const ctx = await fsp.mkdtemp(path.join(work, 'own-'));
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox\nRUN mkdir /data && touch /data/f && chown 42:43 /data/f && chown 1000:1000 /data\n');
    await fsp.chmod(ctx, 0o755);
    const r = await user.hoist(['build', '-q', '-t', 'own:1', ctx]);
    expect(r.code).toBe(0);
    const inspect = JSON.parse(await must(user.hoist(['inspect', 'own:1']), 'inspect')) as { manifest: { layers: Array<{ digest: string }> }; config: { rootfs: { diff_ids: string[] } } };
    const blob = path.join(storeOf(user), 'oci', 'blobs', 'sha256', inspect.manifest.layers.at(-1)!.digest.slice(7));
    const owners = await layerOwners(blob);
    expect(owners.get('data/f')).toBe('42/43');
    expect(owners.get('data')).toBe('1000/1000');
    // on disk, the snapshot holds the file as the 42nd subordinate id
    const diffId = inspect.config.rootfs.diff_ids.at(-1)!.slice(7);
    const st = await fsp.stat(path.join(storeOf(user), 'snapshots', 'snapshots', diffId, 'diff', 'data', 'f'));
    expect(st.uid).toBe(user.subuids[0]!.start + 41);
  });

  it('uses cache mounts and secrets', async () => {
    const ctx = await fsp.mkdtemp(path.join(work, 'mounts-'));
    await fsp.writeFile(path.join(ctx, 'secret.txt'), 's3cret');
    await fsp.writeFile(
      path.join(ctx, 'Dockerfile'),
      'FROM busybox\nRUN --mount=type=cache,target=/cache echo run >> /cache/log && wc -l < /cache/log > /runs\n' +
        'RUN --mount=type=secret,id=tok test "$(cat /run/secrets/tok)" = s3cret && touch /secret-seen\n',
    );
    await run('chmod', ['-R', 'a+rX', ctx]);
    const a = await user.hoist(['build', '-q', '--no-cache', '--secret', `id=tok,src=${path.join(ctx, 'secret.txt')}`, '-t', 'mounts:1', ctx]);
    expect(a.stderr).toBe('');
    expect(a.code).toBe(0);
    const b = await user.hoist(['build', '-q', '--no-cache', '--secret', `id=tok,src=${path.join(ctx, 'secret.txt')}`, '-t', 'mounts:1', ctx]);
    expect(b.code).toBe(0);
    const out = await user.hoist(['run', 'mounts:1', 'sh', '-c', 'cat /runs; ls /secret-seen; test ! -e /run/secrets/tok && echo no-secret']);
    expect(out.stdout).toBe('2\n/secret-seen\nno-secret\n');
  });

  it('pushes to the test registry', async () => {
    const ref = `${registry.host}/rootless/hello:1`;
    const r = await user.hoist(['push', 'hello:1', ref]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`pushed ${ref}`);
    const local = JSON.parse(await must(user.hoist(['inspect', 'hello:1']), 'inspect')) as { descriptor: { digest: string } };
    const remote = await must(run('skopeo', ['inspect', '--tls-verify=false', '--format', '{{.Digest}}', `docker://${ref}`]), 'skopeo');
    expect(remote.trim()).toBe(local.descriptor.digest);
  });

  it('refuses --memory with the reason and builds nothing', async () => {
    const r = await user.hoist(['build', '--memory', '64m', '--pids-limit', '50', HELLO]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^ERROR: --memory, --pids-limit need a cgroup hoist may manage, but hoist runs rootless \(in a user namespace\) and .*Build without these flags, or run hoist as root\n$/);
    expect(r.stdout).toBe('');
  });

  it('a store of root is refused with the reason and the fix', async () => {
    const r = await user.hoist(['build', '--root', rootStore, HELLO]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^ERROR: EACCES: permission denied, .*\nhint: hoist runs rootless .* pass --root DIR of your own, or unset HOIST_ROOT\n$/);
  });

  it('explains a user namespace the environment refuses: exit 1, no stack trace', async () => {
    const bin = await fsp.mkdtemp(path.join(work, 'fakebin-'));
    await fsp.writeFile(path.join(bin, 'unshare'), '#!/bin/sh\necho "unshare: unshare failed: Operation not permitted" >&2\nexit 1\n', { mode: 0o755 });
    await fsp.chmod(bin, 0o755);
    const env = { PATH: `${bin}:${process.env.PATH}` };
    const r = await user.hoist(['build', '--isolation', 'rootless', HELLO], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^ERROR: cannot create a user namespace for the rootless build \(unshare: unshare failed: Operation not permitted\)\. .*allow unprivileged user namespaces, run hoist as root, or build without any privilege: --isolation proot \(apt-get install proot\)\n$/);
    // with no flag (auto), hoist falls back to the no-privilege mode and says why (a store of its own: the
    // rootless store holds files of subordinate ids, which the user cannot read outside the namespace)
    const store = path.join(user.home, 'proot-store');
    await must(user.hoist(['import', '--root', store, path.join(work, 'busybox.tar'), 'busybox:latest'], { env }), 'import');
    const auto = await user.hoist(['build', '--root', store, '--progress', 'plain', HELLO], { env });
    expect(auto.stderr).toContain('isolation: proot (no privileges: user namespaces are refused here (unshare: unshare failed: Operation not permitted)');
    expect(auto.code).toBe(0);
  });

  it('when the parent hoist is killed (SIGKILL), the build in the namespace stops and cleans up', async () => {
    const ctx = await fsp.mkdtemp(path.join(work, 'killed-'));
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox\nRUN echo "sleeping-$((6*7))" && sleep 600\n');
    await fsp.chmod(ctx, 0o755);
    const child = user.spawnHoist(['build', '--no-cache', '--progress', 'plain', ctx]);
    child.stdin.end();
    let stderr = '';
    child.stdout.resume();
    // 'close' comes when every holder of the pipes is gone: the parent AND the child in the namespace
    const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes('sleeping-42')) child.kill('SIGKILL'); // the RUN's output, not its label
    });
    await closed;
    expect(stderr).toContain('hoist: SIGHUP: stopping (cleaning up sandboxes and mounts)...');
    expect(stderr).toMatch(/ERROR: failed to solve: .*build cancelled/);
    const store = storeOf(user);
    expect(await fsp.readdir(path.join(store, 'snapshots', 'mounts'))).toEqual([]);
    expect(await fsp.readdir(path.join(store, 'runtime', 'runc'))).toEqual([]);
    // bundles and secrets lived on the build's private tmpfs below tmp/: gone with it
    expect(await fsp.readdir(path.join(store, 'tmp'))).toEqual([]);
    // nothing of the user's still runs (the exited child may wait as a zombie for init to reap it)
    const ps = await run('ps', ['-o', 'stat=,cmd=', '-u', String(user.uid)]);
    expect(ps.stdout.split('\n').filter((l) => l && !l.startsWith('Z'))).toEqual([]);
  });

  describe('without /etc/subuid and /etc/subgid lines', () => {
    it('a simple build works, with the warning of what cannot', async () => {
      const ctx = await fsp.mkdtemp(path.join(work, 'single-'));
      await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM rootbox\nRUN echo "hi from $(id -u)" > /hi\n');
      await fsp.chmod(ctx, 0o755);
      const r = await single.hoist(['build', '--progress', 'plain', '-t', 'single:1', ctx]);
      expect(r.code).toBe(0);
      expect(r.stderr).toContain(`WARNING: rootless build with a single id: ${single.name} has no range in /etc/subuid. Only uid/gid 0 exist in the build`);
      expect(r.stderr).toContain(`usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${single.name}`);
      expect(r.stderr).toContain(`isolation: rootless (runc in a user namespace with one id: uid 0 = host uid ${single.uid}; no /etc/subuid range)`);
      const out = await single.hoist(['run', 'single:1', 'cat', '/hi']);
      expect(out.stdout).toBe('hi from 0\n');
    });

    it('a chown to another id fails with a clear message, leaving nothing behind', async () => {
      const ctx = await fsp.mkdtemp(path.join(work, 'single-chown-'));
      await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM rootbox\nRUN touch /x && chown 42 /x\n');
      await fsp.chmod(ctx, 0o755);
      const r = await single.hoist(['build', '--progress', 'plain', ctx]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/chown: \/x: Invalid argument/);
      expect(r.stderr).toMatch(/ERROR: .*exit code: 1 \(runtime runc\)\. This build runs rootless with a single id: only uid\/gid 0 exist, so chown to another id, useradd, apt-get and USER fail/);
      const store = storeOf(single);
      expect(await fsp.readdir(path.join(store, 'snapshots', 'mounts'))).toEqual([]);
      expect(await fsp.readdir(path.join(store, 'snapshots', 'tmp'))).toEqual([]);
      expect((await fsp.readdir(path.join(store, 'tmp'))).filter((n) => n !== 'bundles')).toEqual([]);
    });

    it('a base with files of other owners is refused, naming the file and the fix', async () => {
      const ctx = await fsp.mkdtemp(path.join(work, 'single-base-'));
      await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox\nRUN true\n');
      await fsp.chmod(ctx, 0o755);
      const r = await single.hoist(['build', ctx]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/ERROR: layer member "\.\/home\/app\/?" belongs to 1000:1000, an id this user namespace does not map\. .*usermod --add-subuids/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    });
  });
});
