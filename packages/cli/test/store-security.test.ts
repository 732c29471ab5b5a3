/**
 * Issue 17 items 1 and 9 as a user meets them: the store is private (another user cannot run
 * a setuid-root file of an unpacked image through it), and `hoist pull`, `push` and `fsck`
 * refuse images whose layers do not match their config or escape the root.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { ImageStore, MediaType, appendLayer, digestHex, emptyImage, writeImage, type Digest } from '@hoist/oci';
import { RegistryClient } from '@hoist/registry-client';
import { encodeHeader } from '@hoist/snapshotter';
import { HOIST_BIN, hoist, run, startRegistry, tempDir, REPO_ROOT, type RunningRegistry } from '@hoist/testkit';

const mode = async (p: string): Promise<number> => (await fsp.stat(p)).mode & 0o7777;
/** Run a command as uid/gid 65534 without capabilities: `env` (run as nobody) does the exec. */
const asNobody = (cmd: string[]): ReturnType<typeof run> => run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', 'env', '--', ...cmd]);
/** `hoist … ` output must never be a stack trace. */
const noStack = (s: string): void => expect(s).not.toMatch(/\n\s+at .+\(.*:\d+:\d+\)/);

describe('the store is private', () => {
  let work: string;
  let root: string;
  let suid: string;

  beforeAll(async () => {
    work = await tempDir('perm');
    await fsp.chmod(work, 0o755); // like /var/lib or a home directory: others may traverse it
    root = path.join(work, 'store');
    const rootfs = path.join(work, 'rootfs');
    expect((await run('bash', [path.join(REPO_ROOT, 'fixtures/base/busybox.sh'), '--rootfs', rootfs])).code).toBe(0);
    await fsp.chmod(rootfs, 0o755);
    await fsp.mkdir(path.join(rootfs, 'opt'), { recursive: true });
    await fsp.copyFile('/usr/bin/id', path.join(rootfs, 'opt', 'suid-id'));
    await fsp.chown(path.join(rootfs, 'opt', 'suid-id'), 0, 0);
    await fsp.chmod(path.join(rootfs, 'opt', 'suid-id'), 0o4755);
    expect((await hoist(['import', '--root', root, rootfs, 'suid:1'])).code).toBe(0);
    const r = await hoist(['run', '--root', root, 'suid:1', 'sh', '-c', 'echo unpacked']);
    expect(r.stdout).toBe('unpacked\n');
    const img = JSON.parse((await hoist(['inspect', '--root', root, 'suid:1'])).stdout) as { config: { rootfs: { diff_ids: Digest[] } } };
    suid = path.join(root, 'snapshots', 'snapshots', digestHex(img.config.rootfs.diff_ids[0]!), 'diff', 'opt', 'suid-id');
  });
  afterAll(async () => fsp.rm(work, { recursive: true, force: true }));

  it('another user cannot execute a setuid-root file of an unpacked image through the store; root still can', async () => {
    expect((await asNobody(['/usr/bin/id', '-u'])).stdout).toBe('65534\n'); // the test itself works
    expect((await run(suid, ['-u'])).stdout).toBe('0\n');
    const r = await asNobody([suid, '-u']);
    expect(r.code).toBe(126);
    expect(r.stderr).toContain('Permission denied');
    expect(r.stdout).toBe('');
    expect([await mode(root), await mode(path.join(root, 'snapshots'))]).toEqual([0o700, 0o700]);
    const again = await hoist(['run', '--root', root, 'suid:1', 'sh', '-c', 'echo root still works']);
    expect(again.stdout).toBe('root still works\n');
  });

  it('a store an older hoist made 0755 is tightened when hoist opens it (fsck reports it until then)', async () => {
    await fsp.chmod(root, 0o755);
    await fsp.chmod(path.join(root, 'snapshots'), 0o755);
    // what the old layout allowed: euid 0 for uid 65534
    expect((await asNobody([suid, '-u'])).stdout).toBe('0\n');
    const f = await hoist(['fsck', '--root', root]);
    expect(f.code).toBe(1);
    expect(f.stdout).toContain(`ERROR: ${root} is open to other users (mode 0755)`);
    expect(f.stdout).toContain(`fix: run \`chmod 700 ${root}\``);
    expect((await hoist(['images', '--root', root])).code).toBe(0);
    expect(await mode(root)).toBe(0o700);
    expect((await asNobody([suid, '-u'])).stderr).toContain('Permission denied');
    expect((await hoist(['run', '--root', root, 'suid:1', 'true'])).code).toBe(0);
    expect(await mode(path.join(root, 'snapshots'))).toBe(0o700);
    expect((await hoist(['fsck', '--root', root])).code).toBe(0);
  });

  it('a root that cannot be made private (another owner) is a clear error, not a stack trace', async () => {
    const foreign = path.join(work, 'foreign-store');
    await fsp.mkdir(foreign, { mode: 0o755 });
    await fsp.chmod(foreign, 0o755);
    const r = await asNobody([process.execPath, HOIST_BIN, 'images', '--root', foreign]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`ERROR: ${foreign} is open to other users (mode 0755) and cannot be made private`);
    expect(r.stderr).toContain(`run \`chmod 700 ${foreign}\` as its owner, or use another --root`);
    noStack(r.stderr);
    expect(await mode(foreign)).toBe(0o755);
  });
});

/** A gzip layer of tar members (file bodies `x`), with the diff_id its bytes really have. */
function layerOf(members: Array<{ name: string; type?: 'file' | 'link'; linkname?: string }>): { gz: Buffer; diffId: Digest } {
  const parts: Buffer[] = [];
  for (const m of members) {
    const type = m.type ?? 'file';
    const size = type === 'file' ? 1 : 0;
    parts.push(encodeHeader({ name: m.name, type, mode: 0o644, uid: 0, gid: 0, size, mtime: 0, ...(m.linkname ? { linkname: m.linkname } : {}) }));
    if (size) parts.push(Buffer.from('x'), Buffer.alloc(511));
  }
  const tar = Buffer.concat([...parts, Buffer.alloc(1024)]);
  return { gz: gzipSync(tar), diffId: `sha256:${createHash('sha256').update(tar).digest('hex')}` as Digest };
}

/** Tag an image of one layer in `store`, its config claiming `diffId`. */
async function storeImage(store: ImageStore, ref: string, layer: { gz: Buffer }, diffId: Digest): Promise<Digest> {
  const put = await store.blobs.put(Readable.from([layer.gz]));
  const img = appendLayer(emptyImage({ os: 'linux', architecture: 'amd64' }), { mediaType: MediaType.OciLayerGzip, digest: put.digest, size: put.size }, diffId, {});
  const w = await writeImage(store.blobs, img);
  await store.tag(ref, w.descriptor);
  return w.descriptor.digest;
}

describe('pull, push and fsck verify layers against the image config', () => {
  let reg: RunningRegistry;
  let work: string;
  const good = layerOf([{ name: 'etc/hello' }]);
  const wrongId = `sha256:${'1'.repeat(64)}` as Digest;

  beforeAll(async () => {
    [reg, work] = await Promise.all([startRegistry(), tempDir('verify')]);
    // publish broken images the way another tool could (the library without checks)
    const src = await ImageStore.open(path.join(work, 'src'));
    const client = new RegistryClient();
    const publish = async (repo: string, layer: { gz: Buffer }, diffId: Digest): Promise<void> => {
      const d = await storeImage(src, `x/${repo}:1`, layer, diffId);
      await client.push(src, { mediaType: MediaType.OciManifest, digest: d, size: (await src.blobs.stat(d))!.size }, `${reg.host}/${repo}:1`);
    };
    await publish('wrong-diffid', good, wrongId);
    const escape = layerOf([{ name: '../../../etc/cron.d/evil' }]);
    await publish('escape', escape, escape.diffId);
    const absolute = layerOf([{ name: 'ok' }, { name: 'h', type: 'link', linkname: '/etc/shadow' }]);
    await publish('absolute', absolute, absolute.diffId);
    await publish('fine', good, good.diffId);
    client.close();
  });
  afterAll(async () => {
    await reg.stop();
    await fsp.rm(work, { recursive: true, force: true });
  });

  it.each([
    ['wrong-diffid', /layer 1 of 1 \(sha256:[0-9a-f]{64}\): layer content hashes to sha256:[0-9a-f]{64}, its image config says diff_id sha256:1{64}/],
    ['escape', /layer member path escapes the root: "..\/..\/..\/etc\/cron.d\/evil"/],
    ['absolute', /hard link "h" -> "\/etc\/shadow": layer member has an absolute path/],
  ])('hoist pull of %s fails with a clear error and stores nothing usable', async (repo, message) => {
    const root = path.join(work, `pull-${repo}`);
    const r = await hoist(['pull', '--root', root, '--progress', 'quiet', `${reg.host}/${repo}:1`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^ERROR: /m);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain('was not stored as usable');
    noStack(r.stderr);
    expect(JSON.parse((await hoist(['images', '--root', root, '--json'])).stdout)).toEqual([]);
    const top = await new RegistryClient().headManifest(`${reg.host}/${repo}:1`);
    expect((await hoist(['inspect', '--root', root, `${reg.host}/${repo}@${top!.digest}`])).code).toBe(2);
    const ok = await hoist(['pull', '--root', root, '--progress', 'quiet', `${reg.host}/fine:1`]);
    expect(ok.code).toBe(0);
  });

  it.each([
    ['wrong-diffid', /its image config says diff_id sha256:1{64}/],
    ['escape', /layer member path escapes the root/],
  ])('a build FROM %s fails and leaves the base untagged; a good base is tagged', async (repo, message) => {
    const root = path.join(work, `build-${repo}`);
    const ctx = path.join(work, `ctx-${repo}`);
    await fsp.mkdir(ctx, { recursive: true });
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), `FROM ${reg.host}/${repo}:1\nRUN true\n`);
    const r = await hoist(['build', '--root', root, '--progress', 'plain', ctx]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ERROR: /);
    expect(r.stderr).toMatch(message);
    noStack(r.stderr);
    expect(JSON.parse((await hoist(['images', '--root', root, '--json'])).stdout)).toEqual([]);
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), `FROM ${reg.host}/fine:1\nCOPY Dockerfile /\n`);
    expect((await hoist(['build', '--root', root, '--progress', 'quiet', ctx])).code).toBe(0);
    const names = (JSON.parse((await hoist(['images', '--root', root, '--json'])).stdout) as Array<{ ref: string }>).map((i) => i.ref);
    expect(names).toContain(`${reg.host}/fine:1`);
    expect(names.some((n) => n.includes(repo))).toBe(false);
  });

  it('hoist push refuses a local image whose layer does not match its config; the registry gets no manifest', async () => {
    const root = path.join(work, 'push');
    expect((await hoist(['images', '--root', root])).code).toBe(0);
    await storeImage(await ImageStore.open(path.join(root, 'oci')), 'bad:1', good, wrongId);
    const r = await hoist(['push', '--root', root, '--progress', 'quiet', 'bad:1', `${reg.host}/pushed/bad:1`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ERROR: .*local image sha256:[0-9a-f]{64}: layer 1 of 1 .*its image config says diff_id sha256:1{64}/);
    expect(r.stderr).toContain('Run `hoist fsck`');
    noStack(r.stderr);
    expect(await new RegistryClient().headManifest(`${reg.host}/pushed/bad:1`)).toBeUndefined();
  });

  it('hoist fsck reports an image whose layer does not match its config, or would escape the root', async () => {
    const root = path.join(work, 'fsck');
    expect((await hoist(['images', '--root', root])).code).toBe(0);
    const store = await ImageStore.open(path.join(root, 'oci'));
    await storeImage(store, 'wrong:1', good, wrongId);
    const escape = layerOf([{ name: '../evil' }]);
    await storeImage(store, 'escape:1', escape, escape.diffId);
    await storeImage(store, 'fine:1', good, good.diffId);
    const f = await hoist(['fsck', '--root', root]);
    expect(f.code).toBe(1);
    expect(f.stdout).toMatch(/ERROR: image docker.io\/library\/wrong:1: layer sha256:[0-9a-f]{64} \(layer 1 of 1\) does not match the image config: it hashes to sha256:[0-9a-f]{64} uncompressed, the config says diff_id sha256:1{64}/);
    expect(f.stdout).toMatch(/ERROR: image docker.io\/library\/escape:1: layer sha256:[0-9a-f]{64} cannot be unpacked safely \(layer member path escapes the root: "..\/evil"\)/);
    expect(f.stdout).not.toContain('library/fine:1');
    expect(f.stdout).toContain('fix: remove the image (`hoist rm docker.io/library/wrong:1`), run `hoist prune`, then pull or rebuild it');
    expect(f.stdout).toContain('the store has 2 problem(s)');
  });
});
