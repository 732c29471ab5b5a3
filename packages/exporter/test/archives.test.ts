/**
 * docker-archive and OCI layout outputs, read back by skopeo (an independent implementation),
 * and `loadArchive` round trips, interop and corruption.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { ImageStore, MediaType, parseManifest, sha256, type Descriptor } from '@hoist/oci';
import { ExportError, loadArchive, resolveImages, saveImages, saveOciDir } from '@hoist/exporter';
import { foreignLayer, hoistLayer, makeImage, newStore, sh, tarMembers, tmp, type Tree } from './helpers.js';

const BASE: Tree = {
  bin: { dir: true },
  'bin/tool': { content: '#!/bin/sh\necho tool\n', mode: 0o755 },
  'bin/alias': { symlink: 'tool' },
  'etc/motd': 'hello\n',
  'home/app/.profile': { content: 'export A=1\n', mode: 0o600, uid: 1000 },
  tmp: { dir: true, mode: 0o1777 },
};
const APP: Tree = { 'etc/motd': 'hello from app\n', 'app/data.txt': 'x'.repeat(300_000) };

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('archives', () => {
  let root: string;
  let store: ImageStore;
  let work: string;
  let app: Descriptor;
  let other: Descriptor;

  beforeAll(async () => {
    ({ root, store } = await newStore());
    work = await tmp('work');
    const base = await hoistLayer(store, BASE);
    app = await makeImage(store, [base, await hoistLayer(store, APP)], { tags: ['app:1', 'localhost:5000/team/app:2'], cmd: ['/bin/tool'] });
    other = await makeImage(store, [base, await hoistLayer(store, { 'other.txt': 'other\n' })], { tags: ['other:1'] });
  });
  afterAll(async () => {
    await fsp.rm(root, { recursive: true, force: true });
    await fsp.rm(work, { recursive: true, force: true });
  });

  const configOf = async (d: Descriptor): Promise<{ digest: string; diffIds: string[] }> => {
    const m = parseManifest(await store.blobs.getBytes(d)).value;
    const cfg = JSON.parse((await store.blobs.getBytes(m.config)).toString()) as { rootfs: { diff_ids: string[] } };
    return { digest: m.config.digest, diffIds: cfg.rootfs.diff_ids };
  };

  describe('docker-archive', () => {
    let file: string;
    beforeAll(async () => {
      file = path.join(work, 'images.tar');
      await saveImages(await resolveImages(store, ['app:1', 'localhost:5000/team/app:2', 'other:1']), { format: 'docker', dest: file });
    });

    it('manifest.json follows the documented format (Config, RepoTags, Layers; <id>/layer.tar, VERSION, json; repositories)', async () => {
      const files = await tarMembers(file);
      const manifest = JSON.parse(files.get('manifest.json')!.toString()) as Array<Record<string, unknown>>;
      expect(manifest).toHaveLength(2);
      const [a, o] = manifest as Array<{ Config: string; RepoTags: string[]; Layers: string[] }>;
      for (const e of manifest) expect(Object.keys(e).sort()).toEqual(['Config', 'Layers', 'RepoTags']);
      expect(a!.RepoTags).toEqual(['app:1', 'localhost:5000/team/app:2']);
      expect(o!.RepoTags).toEqual(['other:1']);
      for (const [entry, desc] of [[a!, app], [o!, other]] as const) {
        const want = await configOf(desc);
        expect(entry.Config).toMatch(/^[a-f0-9]{64}\.json$/);
        const cfg = files.get(entry.Config)!;
        expect(sha(cfg)).toBe(want.digest);
        expect(`sha256:${entry.Config.slice(0, 64)}`).toBe(want.digest);
        expect(entry.Layers).toHaveLength(want.diffIds.length);
        let parent: string | undefined;
        entry.Layers.forEach((p, i) => {
          expect(p).toMatch(/^[a-f0-9]{64}\/layer\.tar$/);
          const id = p.slice(0, 64);
          // uncompressed: the file IS the diff
          expect(sha(files.get(p)!)).toBe(want.diffIds[i]);
          expect(files.get(`${id}/VERSION`)!.toString()).toBe('1.0');
          const v1 = JSON.parse(files.get(`${id}/json`)!.toString()) as { id: string; parent?: string };
          expect(v1.id).toBe(id);
          expect(v1.parent).toBe(parent);
          parent = id;
        });
      }
      // the shared base layer is stored once
      expect(a!.Layers[0]).toBe(o!.Layers[0]);
      expect([...files.keys()].filter((k) => k.endsWith('/layer.tar'))).toHaveLength(3);
      const repos = JSON.parse(files.get('repositories')!.toString()) as Record<string, Record<string, string>>;
      expect(repos).toEqual({
        app: { '1': a!.Layers[1]!.slice(0, 64) },
        'localhost:5000/team/app': { '2': a!.Layers[1]!.slice(0, 64) },
        other: { '1': o!.Layers[1]!.slice(0, 64) },
      });
    });

    it('skopeo copy docker-archive: reads it, and the result is the same image (config, diff_ids)', async () => {
      const want = await configOf(app);
      // skopeo's view of the archive: our config blob, layers = the diffs
      const src = JSON.parse((await sh('skopeo', ['inspect', '--raw', `docker-archive:${file}:app:1`])).stdout.toString()) as { config: { digest: string }; layers: Array<{ digest: string }> };
      expect(src.config.digest).toBe(want.digest);
      expect(src.layers.map((l) => l.digest)).toEqual(want.diffIds);
      const dir = path.join(work, 'from-docker');
      const cp = await sh('skopeo', ['copy', `docker-archive:${file}:app:1`, `oci:${dir}:x`]);
      expect(cp.stderr).toBe('');
      expect(cp.code).toBe(0);
      // converting to OCI, skopeo re-serialises the config (other key order): compare the content
      const got = JSON.parse((await sh('skopeo', ['inspect', '--config', `oci:${dir}:x`])).stdout.toString()) as unknown;
      const m = parseManifest(await store.blobs.getBytes(app)).value;
      expect(got).toEqual(JSON.parse((await store.blobs.getBytes(m.config)).toString()));
      expect((got as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids).toEqual(want.diffIds);
    });

    it('is reproducible (same images, same bytes)', async () => {
      const again = path.join(work, 'again.tar');
      await saveImages(await resolveImages(store, ['app:1', 'localhost:5000/team/app:2', 'other:1']), { format: 'docker', dest: again });
      expect(sha(await fsp.readFile(again))).toBe(sha(await fsp.readFile(file)));
    });

    it('hoist load restores the exact image and its tags in a fresh store', async () => {
      const fresh = await newStore();
      const r = await loadArchive(fresh.store, createReadStream(file));
      expect(r.format).toBe('docker');
      expect(r.images.map((i) => [i.descriptor.digest, i.refs, i.exact])).toEqual([
        [app.digest, ['docker.io/library/app:1', 'localhost:5000/team/app:2'], true],
        [other.digest, ['docker.io/library/other:1'], true],
      ]);
      expect((await fresh.store.list()).map((i) => [i.ref, i.descriptor.digest]).sort()).toEqual(
        [
          ['docker.io/library/app:1', app.digest],
          ['localhost:5000/team/app:2', app.digest],
          ['docker.io/library/other:1', other.digest],
        ].sort(),
      );
      await fsp.rm(fresh.root, { recursive: true, force: true });
    });

    it('a gzip-compressed archive loads too', async () => {
      const gz = path.join(work, 'images.tar.gz');
      expect((await sh('sh', ['-c', `gzip -c ${file} > ${gz}`])).code).toBe(0);
      const fresh = await newStore();
      const r = await loadArchive(fresh.store, createReadStream(gz));
      expect(r.images.map((i) => i.descriptor.digest)).toEqual([app.digest, other.digest]);
      await fsp.rm(fresh.root, { recursive: true, force: true });
    });
  });

  describe('OCI layout', () => {
    it('type=oci tar: skopeo copy oci-archive:FILE:REF reads it and keeps the manifest digest', async () => {
      const file = path.join(work, 'app-oci.tar');
      await saveImages(await resolveImages(store, ['app:1']), { format: 'oci', dest: file });
      const files = await tarMembers(file);
      expect(JSON.parse(files.get('oci-layout')!.toString())).toEqual({ imageLayoutVersion: '1.0.0' });
      const index = JSON.parse(files.get('index.json')!.toString()) as { manifests: Descriptor[] };
      expect(index.manifests).toEqual([
        { mediaType: MediaType.OciManifest, digest: app.digest, size: app.size, annotations: { 'org.opencontainers.image.ref.name': 'docker.io/library/app:1', 'io.containerd.image.name': 'docker.io/library/app:1' } },
      ]);
      for (const [name, body] of files) if (name.startsWith('blobs/sha256/')) expect(sha(body!)).toBe(`sha256:${name.slice(13)}`);
      const dir = path.join(work, 'from-oci');
      const cp = await sh('skopeo', ['copy', `oci-archive:${file}:docker.io/library/app:1`, `oci:${dir}:x`]);
      expect(cp.stderr).toBe('');
      const raw = (await sh('skopeo', ['inspect', '--raw', `oci:${dir}:x`])).stdout;
      expect(sha(raw)).toBe(app.digest);
      // one image in the index: no reference needed
      expect((await sh('skopeo', ['inspect', `oci-archive:${file}`])).code).toBe(0);
    });

    it('type=oci dir: a new layout, then another image added to it; skopeo reads both', async () => {
      const dir = path.join(work, 'layout');
      await saveOciDir(await resolveImages(store, ['app:1']), dir);
      await saveOciDir(await resolveImages(store, ['other:1']), dir);
      expect((await fsp.readdir(dir)).sort()).toEqual(['blobs', 'index.json', 'oci-layout']);
      for (const [ref, d] of [['docker.io/library/app:1', app], ['docker.io/library/other:1', other]] as const) {
        const raw = await sh('skopeo', ['inspect', '--raw', `oci:${dir}:${ref}`]);
        expect(raw.stderr).toBe('');
        expect(sha(raw.stdout)).toBe(d.digest);
      }
      await expect(saveOciDir(await resolveImages(store, ['app:1']), work)).rejects.toMatchObject({ code: 'DEST_EXISTS' });
    });

    it('an OCI archive round-trips through hoist load; an untagged image stays untagged', async () => {
      const file = path.join(work, 'two.tar');
      await saveImages(await resolveImages(store, ['app:1', `other@${other.digest}`]), { format: 'oci', dest: file });
      const fresh = await newStore();
      const r = await loadArchive(fresh.store, createReadStream(file));
      expect(r.format).toBe('oci');
      expect(r.images.map((i) => [i.descriptor.digest, i.refs])).toEqual([
        [app.digest, ['docker.io/library/app:1']],
        [other.digest, []],
      ]);
      expect((await fresh.store.list()).map((i) => i.ref)).toEqual(['docker.io/library/app:1']);
      expect(await fresh.store.blobs.has(other.digest)).toBe(true);
      await fsp.rm(fresh.root, { recursive: true, force: true });
    });
  });

  describe('interop and foreign layers', () => {
    it('loads a docker-archive and an oci-archive written by skopeo', async () => {
      const d = path.join(work, 'skopeo-docker.tar');
      const o = path.join(work, 'skopeo-oci.tar');
      expect((await sh('skopeo', ['copy', `oci:${root}/oci:docker.io/library/app:1`, `docker-archive:${d}:app:9`])).code).toBe(0);
      expect((await sh('skopeo', ['copy', `oci:${root}/oci:docker.io/library/app:1`, `oci-archive:${o}:registry.example/app:9`])).code).toBe(0);
      const fresh = await newStore();
      const rd = await loadArchive(fresh.store, createReadStream(d));
      expect(rd.images).toHaveLength(1);
      expect(rd.images[0]!.refs).toEqual(['docker.io/library/app:9']);
      const ro = await loadArchive(fresh.store, createReadStream(o));
      expect(ro.images[0]!.refs).toEqual(['registry.example/app:9']);
      expect(ro.images[0]!.descriptor.digest).toBe(app.digest);
      // the docker-archive lost the manifest; the config (image ID) is the same
      const want = await configOf(app);
      const got = parseManifest(await fresh.store.blobs.getBytes(rd.images[0]!.descriptor)).value;
      expect(got.config.digest).toBe(want.digest);
      await fsp.rm(fresh.root, { recursive: true, force: true });
    });

    it('layers hoist cannot recompress identically come back as a new manifest over the same config', async () => {
      const img = await makeImage(store, [await foreignLayer(store, BASE)], { tags: ['foreign:1'] });
      const file = path.join(work, 'foreign.tar');
      await saveImages(await resolveImages(store, ['foreign:1']), { format: 'docker', dest: file });
      const fresh = await newStore();
      const r = await loadArchive(fresh.store, createReadStream(file));
      expect(r.images[0]!.exact).toBe(false);
      expect(r.images[0]!.descriptor.digest).not.toBe(img.digest);
      const got = parseManifest(await fresh.store.blobs.getBytes(r.images[0]!.descriptor)).value;
      expect(got.config.digest).toBe((await configOf(img)).digest);
      expect(got.layers[0]!.mediaType).toBe(MediaType.OciLayerGzip);
      await fsp.rm(fresh.root, { recursive: true, force: true });
    });
  });

  describe('corrupt archives tag nothing', () => {
    const rewrite = async (src: string, dest: string, edit: (dir: string) => Promise<void>): Promise<void> => {
      const dir = await tmp('edit');
      expect((await sh('tar', ['-C', dir, '-xf', src])).code).toBe(0);
      await edit(dir);
      expect((await sh('tar', ['-C', dir, '-cf', dest, '.'])).code).toBe(0);
      await fsp.rm(dir, { recursive: true, force: true });
    };
    const flipByte = async (file: string, at: number): Promise<void> => {
      const b = await fsp.readFile(file);
      b[at] = b[at]! ^ 0xff;
      await fsp.writeFile(file, b);
    };
    let docker: string;
    let oci: string;
    beforeAll(async () => {
      docker = path.join(work, 'good-docker.tar');
      oci = path.join(work, 'good-oci.tar');
      await saveImages(await resolveImages(store, ['app:1', 'other:1']), { format: 'docker', dest: docker });
      await saveImages(await resolveImages(store, ['app:1', 'other:1']), { format: 'oci', dest: oci });
    });

    const expectRejected = async (file: string, code: string): Promise<void> => {
      const fresh = await newStore();
      const err = await loadArchive(fresh.store, createReadStream(file)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ExportError);
      expect((err as ExportError).code).toBe(code);
      expect(await fresh.store.list()).toEqual([]);
      await fsp.rm(fresh.root, { recursive: true, force: true });
    };

    it('a changed byte in a docker layer.tar (of the second image)', async () => {
      const bad = path.join(work, 'bad-layer.tar');
      const manifest = JSON.parse((await tarMembers(docker)).get('manifest.json')!.toString()) as Array<{ Layers: string[] }>;
      await rewrite(docker, bad, async (dir) => flipByte(path.join(dir, manifest[1]!.Layers[1]!), 700));
      await expectRejected(bad, 'ARCHIVE_CORRUPT');
    });

    it('a changed config', async () => {
      const bad = path.join(work, 'bad-config.tar');
      const manifest = JSON.parse((await tarMembers(docker)).get('manifest.json')!.toString()) as Array<{ Config: string }>;
      await rewrite(docker, bad, async (dir) => {
        const p = path.join(dir, manifest[0]!.Config);
        await fsp.writeFile(p, (await fsp.readFile(p, 'utf8')).replace('/bin/tool', '/bin/evil'));
      });
      await expectRejected(bad, 'ARCHIVE_CORRUPT');
    });

    it('a changed blob in an OCI archive', async () => {
      const bad = path.join(work, 'bad-blob.tar');
      const m = parseManifest(await store.blobs.getBytes(other)).value;
      await rewrite(oci, bad, async (dir) => flipByte(path.join(dir, 'blobs/sha256', m.layers[1]!.digest.slice(7)), 20));
      await expectRejected(bad, 'ARCHIVE_CORRUPT');
    });

    it('a missing blob in an OCI archive', async () => {
      const bad = path.join(work, 'missing-blob.tar');
      const m = parseManifest(await store.blobs.getBytes(other)).value;
      await rewrite(oci, bad, async (dir) => fsp.rm(path.join(dir, 'blobs/sha256', m.layers[1]!.digest.slice(7))));
      await expectRejected(bad, 'ARCHIVE_CORRUPT');
    });

    it('a truncated archive, and something that is not an archive', async () => {
      const cut = path.join(work, 'cut.tar');
      const b = await fsp.readFile(docker);
      await fsp.writeFile(cut, b.subarray(0, Math.floor(b.length / 2) + 100));
      await expectRejected(cut, 'ARCHIVE_INVALID');
      const junk = path.join(work, 'junk.tar');
      await fsp.writeFile(junk, 'this is not a tar file\n'.repeat(100));
      await expectRejected(junk, 'ARCHIVE_INVALID');
      const empty = path.join(work, 'notimage.tar');
      const d = await tmp('plain');
      await fsp.writeFile(path.join(d, 'README'), 'hi');
      await sh('tar', ['-C', d, '-cf', empty, '.']);
      await expectRejected(empty, 'ARCHIVE_INVALID');
      await fsp.rm(d, { recursive: true, force: true });
    });
  });

  it('sha256 helper agrees with the store', () => {
    expect(sha(Buffer.from('x'))).toBe(sha256('x'));
  });
});
