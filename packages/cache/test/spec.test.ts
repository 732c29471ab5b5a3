import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ImageStore, MediaType, sha256 } from '@hoist/oci';
import { CACHE_ARTIFACT_TYPE, CACHE_CONFIG_MEDIA_TYPE, LocalCacheSource, exportCacheToDir, parseCacheSpec, writeCacheManifest } from '@hoist/cache';

describe('cache specs', () => {
  it('parses buildx-style values', () => {
    expect(parseCacheSpec('type=registry,ref=r.example/app:cache,mode=max', 'to')).toEqual({ type: 'registry', ref: 'r.example/app:cache', mode: 'max' });
    expect(parseCacheSpec('r.example/app:cache', 'from')).toEqual({ type: 'registry', ref: 'r.example/app:cache', mode: 'min' });
    expect(parseCacheSpec('type=local,dest=/tmp/c', 'to')).toEqual({ type: 'local', dir: '/tmp/c', mode: 'min' });
    expect(parseCacheSpec('type=local,src=/tmp/c', 'from')).toEqual({ type: 'local', dir: '/tmp/c', mode: 'min' });
  });
  it.each([
    ['type=gha', 'to', /type must be registry or local/],
    ['type=registry', 'to', /needs ref=/],
    ['type=local,src=/x', 'to', /needs dest=DIR/],
    ['type=registry,ref=x,mode=all', 'to', /mode must be min or max/],
  ])('rejects %s (%s)', (value, dir, msg) => {
    expect(() => parseCacheSpec(value, dir as 'to' | 'from')).toThrow(msg);
  });
});

describe('cache artifact', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hoist-cache-unit-'));
  });
  afterAll(async () => fsp.rm(dir, { recursive: true, force: true }));

  it('is an OCI manifest with hoist artifact and config types listing each layer once', async () => {
    const store = await ImageStore.open(path.join(dir, 'store'));
    const layer = await store.blobs.putBytes(Buffer.from('layer bytes'), MediaType.OciLayerGzip);
    const diffId = sha256('uncompressed');
    const recs = [
      { key: 'b'.repeat(64), created: '2026-01-01T00:00:00Z', layer: { descriptor: layer, diffId } },
      { key: 'a'.repeat(64), created: '2026-01-01T00:00:00Z', layer: { descriptor: layer, diffId } },
    ];
    const { manifest } = await writeCacheManifest(store.blobs, { records: recs, mode: 'max' });
    expect(manifest.artifactType).toBe(CACHE_ARTIFACT_TYPE);
    expect(manifest.config.mediaType).toBe(CACHE_CONFIG_MEDIA_TYPE);
    expect(manifest.layers).toEqual([layer]);
    const cfg = JSON.parse((await store.blobs.getBytes(manifest.config)).toString()) as { records: Array<{ key: string }> };
    expect(cfg.records.map((r) => r.key)).toEqual(['a'.repeat(64), 'b'.repeat(64)]);

    const out = path.join(dir, 'exported');
    await exportCacheToDir(store, { records: recs, dir: out, mode: 'max' });
    const other = await ImageStore.open(path.join(dir, 'other'));
    const src = await LocalCacheSource.load(other, out);
    expect(src?.size).toBe(2);
    expect(await src!.get('a'.repeat(64))).toMatchObject({ layer: { diffId } });
    expect(src!.hasLayer(layer)).toBe(true);
    await src!.fetchLayer(layer, {});
    expect(await other.blobs.has(layer.digest)).toBe(true);
  });
});
