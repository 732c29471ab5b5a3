/**
 * Cache format 2 (and 3): records carry input digests only (whatever else a record object holds is not
 * written), and a cache of another format version is a CACHE_VERSION error the CLI can skip.
 */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ImageStore, MediaType, sha256 } from '@hoist/oci';
import { CACHE_CONFIG_MEDIA_TYPE, CACHE_FORMAT_VERSION, CacheError, parseCacheConfig, writeCacheManifest, type CacheEntry } from '@hoist/cache';

const configDesc = { mediaType: CACHE_CONFIG_MEDIA_TYPE, digest: sha256('x'), size: 1 };

describe('cache format', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hoist-cache-format-'));
  });
  afterAll(async () => fsp.rm(dir, { recursive: true, force: true }));

  it('writes only the fields of the format: a stray inputs object never reaches the export', async () => {
    const store = await ImageStore.open(path.join(dir, 'store'));
    const layer = await store.blobs.putBytes(Buffer.from('layer'), MediaType.OciLayerGzip);
    const rec = {
      key: 'c'.repeat(64),
      created: '2026-01-01T00:00:00Z',
      parent: 'd'.repeat(64),
      layer: { descriptor: layer, diffId: sha256('u') },
      inputDigests: { op: 'run', 'arg:NPM_TOKEN': sha256('salted') },
      inputs: { env: ['NPM_TOKEN=s3cr3t-value'] },
    } as CacheEntry;
    const { manifest } = await writeCacheManifest(store.blobs, { records: [rec], mode: 'min' });
    const text = (await store.blobs.getBytes(manifest.config)).toString();
    expect(text).not.toContain('s3cr3t');
    const cfg = JSON.parse(text) as { version: number; records: Array<Record<string, unknown>> };
    expect(cfg.version).toBe(CACHE_FORMAT_VERSION);
    expect(CACHE_FORMAT_VERSION).toBe(4);
    expect(Object.keys(cfg.records[0]!).sort()).toEqual(['created', 'inputDigests', 'key', 'layer', 'parent']);
  });

  it('a cache of format version 1 is a CACHE_VERSION error naming both versions', () => {
    const v1 = Buffer.from(JSON.stringify({ version: 1, mode: 'max', records: [] }));
    let err: unknown;
    try {
      parseCacheConfig(v1, configDesc, 'reg.example/app:cache');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CacheError);
    expect((err as CacheError).code).toBe('CACHE_VERSION');
    expect((err as CacheError).message).toMatch(/reg\.example\/app:cache: cache format version 1, this hoist reads versions 2, 3 and 4/);
  });

  it('a config without records is CACHE_INVALID', () => {
    expect(() => parseCacheConfig(Buffer.from('{"version":3}'), configDesc, 'x')).toThrow(expect.objectContaining({ code: 'CACHE_INVALID' }));
    expect(() => parseCacheConfig(Buffer.from('null'), configDesc, 'x')).toThrow(expect.objectContaining({ code: 'CACHE_INVALID' }));
  });
});
