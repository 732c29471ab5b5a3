import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { storePaths, withFileLock } from '@hoist/oci';
import { makeTempDir } from './tmp.js';
import { setOwner } from './owner.js';

export type CacheSharing = 'shared' | 'private' | 'locked';

/** What a cache mount starts from, besides its id. */
export interface CacheMountOrigin {
  /** The seed's content: `stage:<cache key>`, `image:<digest>` or `context`. */
  from?: string;
  source?: string;
  uid?: number;
  gid?: number;
  mode?: number;
}

/**
 * The key of a cache mount's directory. BuildKit keys a cache by its id and the ref it starts
 * from (mounts.go getRefCacheDir: `id + ":" + ref.ID()`): none for a plain cache, the `from`
 * stage or image, or — with uid/gid/mode — a directory made with them (defaults 0, 0, 0755). So
 * the same id with other uid/gid/mode, or another seed, is another cache; a plain cache keeps
 * the bare id.
 */
export function cacheMountKey(id: string, o: CacheMountOrigin): string {
  const parts: string[] = [];
  if (o.from !== undefined) parts.push(`from=${o.from}`);
  if (o.source !== undefined) parts.push(`source=${o.source}`);
  if (o.uid !== undefined || o.gid !== undefined || o.mode !== undefined) {
    parts.push(`perm=${o.uid ?? 0}:${o.gid ?? 0}:${(o.mode ?? 0o755).toString(8)}`);
  }
  return parts.length === 0 ? id : `${id}\0${parts.join('\0')}`;
}

/** How long a `sharing=locked` RUN waits for the cache before giving up. */
export const LOCK_WAIT_MS = 6 * 60 * 60 * 1000;

/** Where the store keeps the cache mount `key` (see cacheMountKey). */
export function cacheMountDir(storeRoot: string, key: string): string {
  return path.join(storePaths(storeRoot).cacheMounts, createHash('sha256').update(key).digest('hex').slice(0, 32));
}

/** Fills a cache mount this store lacks (from an imported cache): whether it had it. */
export interface MountSeeder {
  /** Whether an imported cache holds the mount (no I/O). */
  has(key: string): boolean;
  seed(key: string, dir: string): Promise<boolean>;
}

/**
 * `RUN --mount=type=cache` directories, persisted in the store (`cache/mounts/<id hash>`), with
 * BuildKit's sharing modes: `shared` (default) lets concurrent steps use one directory;
 * `private` gives a step a fresh empty directory while another step of this build holds the
 * cache; `locked` waits until no other step — of this or another hoist process — holds it.
 * Owned by one build (no global state).
 */
export class CacheMounts {
  private readonly users = new Map<string, number>();
  private readonly seeding = new Map<string, Promise<void>>();
  /** Keys of the cache mounts this build's steps used, and their directories (for `cache-mounts=true`). */
  readonly used = new Map<string, string>();

  constructor(
    private readonly storeRoot: string,
    private readonly tmpRoot: string,
    private readonly seeder?: MountSeeder,
  ) {}

  dirFor(key: string): string {
    return cacheMountDir(this.storeRoot, key);
  }

  /**
   * A cache mount the store lacks is seeded (once per build) into a temp dir and renamed into
   * place: concurrent builds on this store see the whole seed or none of it.
   */
  private async seedMissing(key: string, dir: string, perms: { uid?: number; gid?: number; mode?: number }): Promise<void> {
    if (!this.seeder?.has(key) || (await fsp.lstat(dir).then(() => true, () => false))) return;
    const seeder = this.seeder;
    const run = async (): Promise<void> => {
      const tmp = await makeTempDir(this.tmpRoot, 'cache-seed-');
      try {
        if (!(await seeder.seed(key, tmp))) return;
        await fsp.chmod(tmp, perms.mode ?? 0o755);
        await setOwner(tmp, perms.uid ?? 0, perms.gid ?? 0);
        await fsp.mkdir(path.dirname(dir), { recursive: true });
        await fsp.rename(tmp, dir).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e; // another build seeded it first
        });
      } finally {
        await fsp.rm(tmp, { recursive: true, force: true });
      }
    };
    const p = this.seeding.get(key) ?? run();
    this.seeding.set(key, p);
    await p;
  }

  /**
   * The directory a step mounts for the cache `key` (see cacheMountKey), created (with
   * uid/gid/mode) when new. Call `release` when the step is done.
   */
  async acquire(key: string, o: { sharing: CacheSharing; uid?: number; gid?: number; mode?: number; seed?: string }): Promise<{ source: string; release(): Promise<void> }> {
    const dir = this.dirFor(key);
    this.used.set(key, dir);
    await this.seedMissing(key, dir, o);
    const fresh = (await fsp.mkdir(dir, { recursive: true })) !== undefined;
    if (fresh) {
      if (o.seed) await fsp.cp(o.seed, dir, { recursive: true, verbatimSymlinks: true, force: true });
      await fsp.chmod(dir, o.mode ?? 0o755);
      await setOwner(dir, o.uid ?? 0, o.gid ?? 0);
    }
    const busy = (this.users.get(dir) ?? 0) > 0;
    if (o.sharing === 'private' && busy) {
      const tmp = await makeTempDir(this.tmpRoot, 'cache-private-');
      await fsp.chmod(tmp, o.mode ?? 0o755);
      await setOwner(tmp, o.uid ?? 0, o.gid ?? 0);
      return { source: tmp, release: () => fsp.rm(tmp, { recursive: true, force: true }) };
    }
    this.users.set(dir, (this.users.get(dir) ?? 0) + 1);
    const unuse = (): void => {
      this.users.set(dir, (this.users.get(dir) ?? 1) - 1);
    };
    if (o.sharing !== 'locked') return { source: dir, release: async () => unuse() };
    let unlock!: () => void;
    const held = new Promise<void>((r) => (unlock = r));
    let acquired!: () => void;
    const got = new Promise<void>((r) => (acquired = r));
    const done = withFileLock(
      `${dir}.lock`,
      async () => {
        acquired();
        await held;
      },
      LOCK_WAIT_MS,
    );
    try {
      await Promise.race([got, done]);
    } catch (e) {
      unuse();
      throw e;
    }
    return {
      source: dir,
      release: async () => {
        unlock();
        await done.catch(() => undefined);
        unuse();
      },
    };
  }
}
