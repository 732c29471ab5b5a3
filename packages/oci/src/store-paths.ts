import * as path from 'node:path';

/**
 * Where a hoist store keeps what (the README's store table); the one definition every package
 * uses. Each part has one owner that reads and writes it: `oci` the image layout
 * (ImageStore/BlobStore), `snapshotter` the snapshots, `builder` the cache records, cache
 * mounts and scratch space.
 */
export interface StorePaths {
  root: string;
  /** The OCI image layout: `oci-layout`, `index.json`, `blobs/sha256/`, `tmp/`. */
  oci: string;
  /** The snapshotter's root. */
  snapshots: string;
  /** Build cache records: `<2 hex>/<key>.json`. */
  cacheKeys: string;
  /** `RUN --mount=type=cache` directories. */
  cacheMounts: string;
  /** The builder's scratch space. */
  tmp: string;
  /** Store leases: one marker per process using the store (`shared-<pid>`, `exclusive-<pid>`). */
  leases: string;
}

export function storePaths(root: string): StorePaths {
  const r = path.resolve(root);
  return {
    root: r,
    oci: path.join(r, 'oci'),
    snapshots: path.join(r, 'snapshots'),
    cacheKeys: path.join(r, 'cache', 'keys'),
    cacheMounts: path.join(r, 'cache', 'mounts'),
    tmp: path.join(r, 'tmp'),
    leases: path.join(r, 'active'),
  };
}
