/** Archive layouts other tools write: docker save's symlinked duplicate layers, Docker 25+'s OCI + manifest.json. */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { MediaType, StoreLayer, parseManifest, type Descriptor, type ImageStore } from '@hoist/oci';
import { loadArchive, measureLayer, resolveImages, saveImages, uncompressedLayer } from '@hoist/exporter';
import { hoistLayer, makeImage, newStore, sh, tmp } from './helpers.js';

const hex = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

describe('loading archives from other tools', () => {
  let root: string;
  let store: ImageStore;
  let work: string;
  let img: Descriptor;

  beforeAll(async () => {
    ({ root, store } = await newStore());
    work = await tmp('formats');
    const l1 = await hoistLayer(store, { 'etc/a': 'a\n' });
    const l2 = await hoistLayer(store, { 'etc/b': 'b\n' });
    img = await makeImage(store, [l1, l2, l1], { tags: ['dup:1'] }); // the same layer twice
  });
  afterAll(async () => {
    await fsp.rm(root, { recursive: true, force: true });
    await fsp.rm(work, { recursive: true, force: true });
  });

  it('docker save style: a repeated layer as a symlink to the first copy', async () => {
    const file = path.join(work, 'dup.tar');
    await saveImages(await resolveImages(store, ['dup:1']), { format: 'docker', dest: file });
    const x = path.join(work, 'dup-x');
    await fsp.mkdir(x);
    await sh('tar', ['-C', x, '-xf', file]);
    const manifest = JSON.parse(await fsp.readFile(path.join(x, 'manifest.json'), 'utf8')) as Array<{ Layers: string[] }>;
    const [first, , third] = manifest[0]!.Layers;
    await fsp.rm(path.join(x, third!));
    await fsp.symlink(`../${first}`, path.join(x, third!));
    const linked = path.join(work, 'dup-linked.tar');
    await sh('tar', ['-C', x, '-cf', linked, '.']);
    const fresh = await newStore();
    const r = await loadArchive(fresh.store, createReadStream(linked));
    expect(r.images.map((i) => [i.descriptor.digest, i.refs, i.exact])).toEqual([[img.digest, ['docker.io/library/dup:1'], true]]);
    await fsp.rm(fresh.root, { recursive: true, force: true });
  });

  it('Docker 25+ style: an OCI layout with uncompressed layer blobs plus manifest.json naming them', async () => {
    const m = parseManifest(await store.blobs.getBytes(img)).value;
    const cfgRaw = await store.blobs.getBytes(m.config);
    const diffIds = (JSON.parse(cfgRaw.toString()) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids;
    const dir = path.join(work, 'docker25');
    const blobs = path.join(dir, 'blobs', 'sha256');
    await fsp.mkdir(blobs, { recursive: true });
    const layers: Descriptor[] = [];
    for (let i = 0; i < m.layers.length; i++) {
      const size = await measureLayer(new StoreLayer(store.blobs, m.layers[i]!, diffIds[i] as never));
      const parts: Buffer[] = [];
      for await (const b of uncompressedLayer(new StoreLayer(store.blobs, m.layers[i]!, diffIds[i] as never))) parts.push(b);
      await fsp.writeFile(path.join(blobs, diffIds[i]!.slice(7)), Buffer.concat(parts));
      layers.push({ mediaType: MediaType.OciLayer, digest: diffIds[i] as never, size });
    }
    await fsp.writeFile(path.join(blobs, m.config.digest.slice(7)), cfgRaw);
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: { ...m.config, mediaType: MediaType.OciConfig }, layers }));
    await fsp.writeFile(path.join(blobs, hex(manifest)), manifest);
    const index = {
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: [{ mediaType: MediaType.OciManifest, digest: `sha256:${hex(manifest)}`, size: manifest.length, annotations: { 'io.containerd.image.name': 'docker.io/library/dup:25', 'org.opencontainers.image.ref.name': '25' } }],
    };
    await fsp.writeFile(path.join(dir, 'index.json'), JSON.stringify(index));
    await fsp.writeFile(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    const entries = [{ Config: `blobs/sha256/${m.config.digest.slice(7)}`, RepoTags: ['dup:25'], Layers: diffIds.map((d) => `blobs/sha256/${d.slice(7)}`) }];
    await fsp.writeFile(path.join(dir, 'manifest.json'), JSON.stringify(entries));
    const file = path.join(work, 'docker25.tar');
    await sh('tar', ['-C', dir, '-cf', file, '.']);

    const a = await newStore();
    const ra = await loadArchive(a.store, createReadStream(file));
    expect(ra.format).toBe('oci');
    expect(ra.images).toEqual([{ descriptor: { mediaType: MediaType.OciManifest, digest: `sha256:${hex(manifest)}`, size: manifest.length }, refs: ['docker.io/library/dup:25'], exact: true }]);

    // without index.json it is a docker-archive whose layers are blobs
    await fsp.rm(path.join(dir, 'index.json'));
    await sh('tar', ['-C', dir, '-cf', file, '.']);
    const b = await newStore();
    const rb = await loadArchive(b.store, createReadStream(file));
    expect(rb.format).toBe('docker');
    expect(rb.images[0]!.refs).toEqual(['docker.io/library/dup:25']);
    const got = parseManifest(await b.store.blobs.getBytes(rb.images[0]!.descriptor)).value;
    expect(got.config.digest).toBe(m.config.digest);
    expect(got.layers).toEqual(layers); // uncompressed, as the archive had them
    for (const s of [a, b]) await fsp.rm(s.root, { recursive: true, force: true });
  });
});
