/**
 * One owner per on-disk format (issue 14), checked over the sources as the package-graph test
 * checks imports: the store layout, ChainIDs and the cache record are defined once; only the
 * snapshotter touches its layout; only the blob store uses its temp files.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from '@hoist/testkit';

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const n of readdirSync(dir)) {
    const p = path.join(dir, n);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

const files = readdirSync(path.join(REPO_ROOT, 'packages')).flatMap((pkg) => {
  const src = path.join(REPO_ROOT, 'packages', pkg, 'src');
  return statSync(src, { throwIfNoEntry: false })?.isDirectory() ? sources(src) : [];
});
const text = new Map(files.map((f) => [path.relative(REPO_ROOT, f), readFileSync(f, 'utf8')]));

/** Source files (repo-relative) in which `re` matches. */
const where = (re: RegExp): string[] => [...text].filter(([, t]) => re.test(t)).map(([f]) => f).sort();

describe('one owner per on-disk format', () => {
  it('store paths are defined in oci/src/store-paths.ts only', () => {
    expect(where(/['"]cache['"],\s*['"](keys|mounts)['"]/)).toEqual(['packages/oci/src/store-paths.ts']);
    expect(where(/join\(\s*\w+,\s*['"](oci|snapshots|active)['"]\s*\)/)).toEqual(['packages/oci/src/store-paths.ts']);
  });

  it('chainIds is defined once, in oci', () => {
    expect(where(/function chainIds\(/)).toEqual(['packages/oci/src/digest.ts']);
  });

  it('the cache record is one interface; the others extend or alias it', () => {
    expect(where(/interface CacheRecord\b/)).toEqual(['packages/oci/src/cache-record.ts']);
    expect(where(/interface (CacheRecordLike|CacheRecordData)\b/)).toEqual([]);
    expect(text.get('packages/cache/src/format.ts')).toMatch(/interface CacheEntry extends CacheRecord\b/);
    expect(where(/`\$\{key\}\.json`/)).toEqual(['packages/oci/src/cache-record.ts']);
  });

  it('only the snapshotter reads its layout (layer.json, chains/, l/)', () => {
    const layout = /['"](layer\.json|chains)['"]|join\([^)]*,\s*['"]l['"]\)/;
    expect(where(layout).filter((f) => !f.startsWith('packages/snapshotter/src/'))).toEqual([]);
  });

  it('BlobStore temp files and adopt stay inside the blob store', () => {
    expect(where(/\.(tempPath|adopt)\(/)).toEqual(['packages/oci/src/blob-store.ts']);
    expect(where(/\.tmpDir\b/).filter((f) => !f.startsWith('packages/oci/src/') && !f.startsWith('packages/builder/src/'))).toEqual([]);
  });
});
