/**
 * The no-privilege mode (issue 10, mode 2), for real: hoist runs inside a runc container that
 * imitates a locked-down Kubernetes pod (non-root user, no capabilities, no_new_privs, seccomp
 * refusing unshare/setns/mount and clone's namespace flags, read-only root, writable home),
 * with no flag. It must notice that user namespaces are refused, run RUN under proot with the
 * copy snapshot driver, and produce the images root produces: the same digest, owners included
 * (an ownership record per snapshot; RUN's chowns recorded through fakeroot).
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { seccompFor } from '@hoist/builder';
import { createTestUser, debianTarball, hoist, HOIST_BIN, lockedDownSeccomp, REPO_ROOT, run, runInLockedPod, tempDir, type TestUser } from '@hoist/testkit';

const SDE = '1700000000';
/** Root builds the reference images on the pod's snapshot driver (copy): a RUN that only opens a file copies it up on overlayfs. */
const ROOT_ENV = { SOURCE_DATE_EPOCH: SDE, HOIST_SNAPSHOTTER: 'copy' };
const HOME_STORE = '/home/builder/.local/share/hoist';

async function must(p: Promise<{ code: number; stdout: string; stderr: string }>, what: string): Promise<string> {
  const r = await p;
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** "mode owner name" of every member of every layer of `ref` in the store at `root` (host path). */
async function layerListing(root: string, ref: string): Promise<string[][]> {
  const index = JSON.parse(await fsp.readFile(path.join(root, 'oci', 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
  const m = index.manifests.find((d) => d.annotations?.['org.opencontainers.image.ref.name'] === ref)!;
  const blob = (d: string): string => path.join(root, 'oci', 'blobs', 'sha256', d.slice(7));
  const manifest = JSON.parse(await fsp.readFile(blob(m.digest), 'utf8')) as { layers: Array<{ digest: string }> };
  const out: string[][] = [];
  for (const l of manifest.layers) {
    const text = await must(run('tar', ['--numeric-owner', '-tvzf', blob(l.digest)]), 'tar -tv');
    out.push(text.split('\n').filter(Boolean).map((line) => { const f = line.split(/\s+/); return `${f[0]} ${f[1]} ${f.slice(5).join(' ')}`; }));
  }
  return out;
}

describe('no privileges: hoist inside a locked-down pod', () => {
  let user: TestUser;
  let work: string;
  let home: string;
  let rootStore: string;
  let hello: string;
  let app: string;
  const pod = (script: string, env: Record<string, string> = {}): ReturnType<typeof runInLockedPod> =>
    runInLockedPod(['sh', '-c', script], {
      uid: user.uid,
      gid: user.gid,
      home,
      seccomp: lockedDownSeccomp(seccompFor('default', [])!),
      readOnly: [REPO_ROOT, work],
      env: { SOURCE_DATE_EPOCH: SDE, HOIST: `node ${HOIST_BIN}`, ...env },
      timeoutMs: 600_000,
    });

  beforeAll(async () => {
    [work, rootStore] = await Promise.all([tempDir('pod'), tempDir('pod-root')]);
    user = await createTestUser({ subids: false });
    home = path.join(work, 'home');
    await fsp.mkdir(home);
    await fsp.chown(home, user.uid, user.gid);
    await must(run('bash', [path.join(REPO_ROOT, 'fixtures', 'base', 'busybox.sh'), '--rootfs', path.join(work, 'bb')]), 'busybox.sh');
    await must(run('tar', ['--numeric-owner', '--sort=name', '-C', path.join(work, 'bb'), '-cf', path.join(work, 'busybox.tar'), '.']), 'tar');
    await fsp.copyFile(await debianTarball(), path.join(work, 'debian.tar'));
    hello = path.join(work, 'hello');
    app = path.join(work, 'app');
    await fsp.cp(path.join(REPO_ROOT, 'fixtures', 'hello'), hello, { recursive: true });
    await fsp.cp(path.join(REPO_ROOT, 'fixtures', 'apps', 'debian-multistage'), app, { recursive: true });
    await must(run('chmod', ['-R', 'a+rX', work]), 'chmod');
    for (const [tar, ref] of [['busybox.tar', 'busybox:latest'], ['debian.tar', 'debian:bookworm']]) {
      await must(hoist(['import', '--root', rootStore, path.join(work, tar!), ref!], { env: ROOT_ENV }), `import ${ref} as root`);
    }
    await must(pod(`$HOIST import ${work}/busybox.tar busybox:latest && $HOIST import ${work}/debian.tar debian:bookworm`), 'import in the pod');
  }, 900_000);

  afterAll(async () => {
    await user?.remove();
    await fsp.rm(work, { recursive: true, force: true });
    await fsp.rm(rootStore, { recursive: true, force: true });
  });

  it('the pod refuses what a locked-down pod refuses: user namespaces, mounts, capabilities', async () => {
    const r = await pod('id -u; grep -E "^(CapEff|NoNewPrivs)" /proc/self/status; unshare --user true; echo unshare=$?; unshare --mount true; echo mountns=$?; mount -t tmpfs t /tmp; echo mount=$?');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${user.uid}\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\nunshare=1\nmountns=1\nmount=32\n`);
  });

  it('builds fixtures/hello with no flag: proot is chosen and named with the reason, and the digest is root\'s', async () => {
    const r = await pod(`$HOIST build --progress plain -t hello:1 ${hello}`);
    expect(r.stderr).toContain('isolation: proot (no privileges: user namespaces are refused here (unshare: unshare failed: Operation not permitted)');
    expect(r.stderr).toContain('snapshots: copy');
    // busybox has no glibc: RUN's chowns could not be recorded, and the build says so (once)
    expect(r.stderr.split("WARNING: this image cannot load fakeroot's library (it has no glibc (a musl image such as Alpine, or static programs only)").length).toBe(2);
    expect(r.code).toBe(0);
    const asRoot = await must(hoist(['build', '--root', rootStore, '--progress', 'plain', '-t', 'hello:1', hello], { env: ROOT_ENV }), 'root build');
    expect(r.stdout.trim()).toBe(asRoot.trim());
    // RUN ran as fake root; USER app is uid 1000 in the config
    const cfg = await must(pod('$HOIST inspect hello:1'), 'inspect');
    expect((JSON.parse(cfg) as { config: { config: { User: string } } }).config.config.User).toBe('app');
  });

  it("builds the Debian multi-stage app (useradd, chown, COPY --chown) with root's digest, owners included; then fully cached", async () => {
    const r = await pod(`$HOIST build --progress plain -t app:1 ${app}`);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/RUN useradd --create-home/);
    expect(r.stderr).not.toContain('WARNING');
    // compared with root on the same snapshot driver (the copy driver keeps files a RUN only opened out of the layer)
    const asRoot = await must(hoist(['build', '--root', rootStore, '--progress', 'plain', '-t', 'app:1', app], { env: ROOT_ENV }), 'root build');
    const mine = await layerListing(path.join(home, '.local', 'share', 'hoist'), 'docker.io/library/app:1');
    const roots = await layerListing(rootStore, 'docker.io/library/app:1');
    expect(mine).toEqual(roots);
    // the owners RUN and COPY --chown gave, and a base file's group kept where useradd rewrote it
    expect(mine.flat().map((e) => e.split(' ').slice(1).join(' '))).toEqual(expect.arrayContaining(['1001/1001 home/app/', '1001/1001 var/lib/app/', '1001/1001 opt/app/report.txt', '0/42 etc/shadow']));
    expect(r.stdout.trim()).toBe(asRoot.trim());

    const again = await pod(`$HOIST build --progress plain -t app:1 ${app}`);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/\(0 steps run, \d+ cached\)/);
    expect(again.stdout).toBe(r.stdout);
  });

  it('outside the pod too (--isolation proot, an ordinary user): RUN useradd/chown, COPY --chown and base owners are exact, with root\'s digest; a static program\'s chown is not recorded', async () => {
    const ctx = path.join(work, 'owners');
    await fsp.mkdir(ctx);
    await fsp.writeFile(path.join(ctx, 'f.txt'), 'f\n');
    const dockerfile = [
      'FROM debian:bookworm AS src',
      'RUN mkdir /d && touch /d/f && chown 7:8 /d/f',
      'FROM debian:bookworm',
      'RUN useradd -m bob && touch /home/bob/f && chown bob:bob /home/bob/f',
      'COPY --chown=42:42 f.txt /c42',
      // COPY --from without --chown keeps the source's owners (from the source's record)
      'COPY --from=src /d/ /fromsrc/',
      // a base file of group utmp (43), rewritten by a RUN: it keeps its owner
      'RUN echo x >> /var/log/lastlog',
      // a RUN as another user: what it creates is its own
      'USER 4242:4343',
      'RUN touch /tmp/mine',
      '',
    ].join('\n');
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), dockerfile);
    await fsp.writeFile(path.join(ctx, 'static.Dockerfile'), 'FROM debian:bookworm\nCOPY --from=busybox:latest /bin/busybox /busybox\nRUN touch /s && /busybox chown 42:42 /s\n');
    await must(run('chmod', ['-R', 'a+rX', ctx]), 'chmod');
    const env = { HOIST_ISOLATION: 'proot', SOURCE_DATE_EPOCH: SDE };
    for (const [tar, ref] of [['busybox.tar', 'busybox:latest'], ['debian.tar', 'debian:bookworm']]) await must(user.hoist(['import', path.join(work, tar!), ref!], { env }), `import ${ref}`);
    const mine = await must(user.hoist(['build', '--progress', 'plain', '-t', 'owners:1', ctx], { env }), 'proot build');
    const asRoot = await must(hoist(['build', '--root', rootStore, '--progress', 'plain', '-t', 'owners:1', ctx], { env: ROOT_ENV }), 'root build');
    const userStore = path.join(user.home, '.local', 'share', 'hoist');
    const listing = await layerListing(userStore, 'docker.io/library/owners:1');
    expect(listing).toEqual(await layerListing(rootStore, 'docker.io/library/owners:1'));
    const owned = listing.slice(1).flat().map((e) => e.split(' ').slice(1).join(' '));
    expect(owned).toEqual(expect.arrayContaining(['1000/1000 home/bob/', '1000/1000 home/bob/f', '0/42 etc/shadow', '42/42 c42', '7/8 fromsrc/f', '0/43 var/log/lastlog', '4242/4343 tmp/mine']));
    expect(mine.trim()).toBe(asRoot.trim());
    // root with --isolation proot: proot -0 as real root chowns on disk, no record needed
    const rootProot = path.join(work, 'root-proot');
    await must(hoist(['import', '--root', rootProot, path.join(work, 'debian.tar'), 'debian:bookworm'], { env: ROOT_ENV }), 'import');
    const asRootProot = await must(hoist(['build', '--root', rootProot, '--progress', 'plain', '-t', 'owners:1', ctx], { env: { ...ROOT_ENV, HOIST_ISOLATION: 'proot' } }), 'root proot build');
    expect(asRootProot.trim()).toBe(asRoot.trim());

    // busybox-static bypasses fakeroot's preload: proot -0 fakes its chown, which is not recorded
    const args = (store: string[]): string[] => ['build', ...store, '-q', '-t', 'static:1', '-f', path.join(ctx, 'static.Dockerfile'), ctx];
    await must(user.hoist(args([]), { env }), 'proot build');
    await must(hoist(args(['--root', rootStore]), { env: ROOT_ENV }), 'root build');
    const last = async (store: string): Promise<string[]> => (await layerListing(store, 'docker.io/library/static:1')).at(-1)!.map((e) => e.split(' ').slice(1).join(' ')).filter((e) => e.endsWith(' s'));
    expect(await last(rootStore)).toEqual(['42/42 s']);
    expect(await last(userStore)).toEqual(['0/0 s']);
  });

  it("a RUN sees none of the builder's files: not the store, not the hoist install, not through /proc", async () => {
    const ctx = path.join(home, 'escape');
    const probe = [
      'FROM busybox',
      `RUN test ! -e ${HOME_STORE} && test ! -e ${REPO_ROOT}/package.json && test ! -e ${work}/debian.tar \\`,
      ` && for p in /proc/[0-9]*; do if cat $p/root${HOME_STORE}/oci/index.json || ls $p/cwd/.local/share/hoist; then exit 9; fi; done >/dev/null 2>&1 \\`,
      ' && echo clean > /result',
      '',
    ].join('\n');
    // the probe can see them where they are visible: in the pod itself, outside proot
    const control = await pod(`test -e ${HOME_STORE} && test -e ${REPO_ROOT}/package.json && cat /proc/1/root${HOME_STORE}/oci/index.json >/dev/null && echo visible`);
    expect(control.stdout).toBe('visible\n');
    await fsp.mkdir(ctx);
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), probe);
    await run('chown', ['-R', `${user.uid}:${user.gid}`, ctx]);
    const r = await pod('$HOIST build -q -t probe:1 /home/builder/escape');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('the system calls proot 5.1 does not translate (statx, openat2, faccessat2, fchmodat2, execveat) cannot reach the store from a RUN; ls -l and stat still work', async () => {
    const ctx = path.join(home, 'syscalls');
    await fsp.mkdir(ctx);
    // x86_64 numbers; each line: name, then the call's result and errno for the store's index.json
    const probe = [
      'my $p = $ARGV[0]; my $buf = "\0" x 512; my $how = pack("QQQ", 0, 0, 0); my $seen = 0;',
      'for my $c (["statx", sub { syscall(332, -100, $p, 0x100, 0xfff, $buf) }], ["openat2", sub { syscall(437, -100, $p, $how, 24) }],',
      '  ["faccessat2", sub { syscall(439, -100, $p, 0, 0) }], ["fchmodat2", sub { syscall(452, -100, $p, 0600, 0) }], ["execveat", sub { syscall(322, -100, $p, 0, 0, 0) }]) {',
      '  my $r = $c->[1]->(); my $e = $! + 0; print "$c->[0]=$r/$e\n"; $seen++ if $r >= 0 || $e == 13 || $e == 8; }',
      'exit($seen ? 9 : 0);',
      '',
    ].join('\n');
    await fsp.writeFile(path.join(ctx, 'probe.pl'), probe);
    const index = `${HOME_STORE}/oci/index.json`;
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), `FROM debian:bookworm\nCOPY probe.pl /\nRUN perl /probe.pl ${index} > /result && mkdir /d && ls -ln / | grep -q " d$" && stat -c %s /etc/shadow\n`);
    await run('chown', ['-R', `${user.uid}:${user.gid}`, ctx]);
    // outside proot (in the pod itself) they do reach it
    const control = await pod(`perl /home/builder/syscalls/probe.pl ${index}`);
    expect(control.code).toBe(9);
    expect(control.stdout).toMatch(/^statx=0\/\d+\nopenat2=\d+\//);
    const r = await pod('$HOIST build --progress plain -t syscalls:1 /home/builder/syscalls');
    expect(r.code).toBe(0);
    const out = await pod('$HOIST build -q --output type=local,dest=/home/builder/syscalls-out /home/builder/syscalls >/dev/null && cat /home/builder/syscalls-out/result');
    expect(out.stdout).toBe('statx=-1/38\nopenat2=-1/38\nfaccessat2=-1/38\nfchmodat2=-1/38\nexecveat=-1/38\n');
  });

  it('hoist run works here under proot: the command\'s output and exit code, fake root, the image\'s root only, nothing left behind', async () => {
    const r = await pod(`$HOIST run busybox:latest sh -c 'id -u; echo $HOME; test -e ${HOME_STORE} || echo no-store; echo err >&2; exit 3'; echo "exit=$?"; ls ${HOME_STORE}/tmp ${HOME_STORE}/snapshots/mounts ${HOME_STORE}/snapshots/tmp 2>/dev/null`);
    expect(r.stdout.split('\n').filter((l) => l && !l.endsWith(':'))).toEqual(['0', '/root', 'no-store', 'exit=3']);
    expect(r.stderr).toBe('err\n');
  });

  it('refused privileges: --network none, limits and --isolation oci/rootless fail with what is missing and the fix, exit 1, nothing left behind', async () => {
    const cases: Array<[string, string]> = [
      ['--network none', '--network none needs a network namespace, which RUN under proot cannot have'],
      ['--memory 64m', '--memory needs cgroups, which RUN under proot cannot have'],
      ['--isolation oci', `--isolation oci runs RUN with runc as root, but hoist runs as uid ${user.uid}`],
      ['--isolation rootless', 'cannot create a user namespace for the rootless build'],
    ];
    for (const [flag, said] of cases) {
      const r = await pod(`$HOIST build ${flag} -q ${hello}; echo "exit=$?"; ls ${HOME_STORE}/tmp ${HOME_STORE}/snapshots/mounts ${HOME_STORE}/snapshots/tmp 2>/dev/null`);
      expect(r.stderr).toContain(said);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
      expect(r.stdout.split('\n').filter((l) => l && !l.endsWith(':'))).toEqual(['exit=1']);
    }
    const rl = await pod(`$HOIST build --isolation rootless -q ${hello}`);
    expect(rl.stderr).toContain('--isolation proot');
    // hoist run --network none: refused with the reason, not a runtime's raw error
    const ranNone = await pod('$HOIST run --network none busybox:latest true');
    expect(ranNone.code).toBe(1);
    expect(ranNone.stderr).toBe('ERROR: --network none needs a network namespace, which proot (no privileges) cannot create; run without it, or where user namespaces or root are allowed\n');
    // RUN --network=none in the Dockerfile: the step fails with the same explanation
    const ctx = path.join(home, 'netnone');
    await fsp.mkdir(ctx);
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox\nRUN --network=none true\n');
    await run('chown', ['-R', `${user.uid}:${user.gid}`, ctx]);
    const r = await pod('$HOIST build -q /home/builder/netnone');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--network=none needs a network namespace, which the no-privilege sandbox (proot) cannot create');
  });

  it('if hoist is killed during a RUN, the processes proot traces are killed too (they outlive proot), and the marks go', async () => {
    const ctx = path.join(home, 'sleeper');
    await fsp.mkdir(ctx);
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox\nRUN sleep 4242\n');
    await run('chown', ['-R', `${user.uid}:${user.gid}`, ctx]);
    const env = { HOIST_ISOLATION: 'proot' };
    await must(user.hoist(['import', path.join(work, 'busybox.tar'), 'busybox:latest'], { env }), 'import');
    const sleepers = async (): Promise<string> => (await run('pgrep', ['-u', String(user.uid), '-x', 'sleep'])).stdout.trim();
    const child = user.spawnHoist(['build', '-q', ctx], { env });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    while ((await sleepers()) === '') {
      expect(child.exitCode).toBeNull(); // still building: the RUN has not started yet
      await new Promise((r) => setTimeout(r, 100));
    }
    process.kill(child.pid!, 'SIGKILL');
    await exited;
    // the watchdog reacts to the end of its pipe: poll until it has killed the group
    for (let i = 0; i < 300 && (await sleepers()) !== ''; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await sleepers()).toBe('');
    const tmp = path.join(user.home, '.local', 'share', 'hoist', 'tmp');
    for (let i = 0; i < 100 && (await fsp.readdir(tmp)).some((n) => n.startsWith('proot-')); i++) await new Promise((r) => setTimeout(r, 100));
    expect((await fsp.readdir(tmp)).filter((n) => n.startsWith('proot-'))).toEqual([]);
  });
});
