import { parseDuration, type Bounds } from './bound.js';
import { CacheError } from './errors.js';
import type { CacheMode } from './format.js';

export type CacheSpec = ({ type: 'registry'; ref: string; mode: CacheMode } | { type: 'local'; dir: string; mode: CacheMode }) & Bounds & {
  /**
   * `--cache-to`: also export the contents of the build's cache mounts (default false).
   * `--cache-from`: seed missing cache mounts from the cache (default true).
   */
  cacheMounts?: boolean;
};

function parseCacheMounts(kv: Record<string, string>, flag: string): { cacheMounts?: boolean } {
  const v = kv['cache-mounts'];
  if (v === undefined) return {};
  if (v !== 'true' && v !== 'false') throw new CacheError('CACHE_SPEC_INVALID', `${flag} cache-mounts must be true or false, not "${v}"`);
  return { cacheMounts: v === 'true' };
}

/** `ttl=DURATION` and `max-entries=N` of a `--cache-to` value (not of `--cache-from`). */
function parseBounds(kv: Record<string, string>, flag: string, direction: 'to' | 'from'): Bounds {
  const b: Bounds = {};
  for (const k of ['ttl', 'max-entries'] as const) {
    if (kv[k] === undefined) continue;
    if (direction === 'from') throw new CacheError('CACHE_SPEC_INVALID', `${flag} does not take ${k}=: it bounds what an export keeps, so give it to --cache-to`);
  }
  if (kv.ttl !== undefined) b.ttlMs = parseDuration(kv.ttl, `${flag} ttl`);
  if (kv['max-entries'] !== undefined) {
    const n = Number(kv['max-entries']);
    if (!/^\d+$/.test(kv['max-entries']) || n < 1) throw new CacheError('CACHE_SPEC_INVALID', `${flag} max-entries must be a whole number of records, at least 1, not "${kv['max-entries']}"`);
    b.maxEntries = n;
  }
  return b;
}

/**
 * Parse `--cache-to` / `--cache-from` values as docker buildx does:
 * `type=registry,ref=REF[,mode=min|max]`, `type=local,dest=DIR` (to) / `src=DIR` (from); a bare
 * `REF` means `type=registry,ref=REF`. `--cache-to` also takes `ttl=DURATION` (drop records no build
 * used for that long) and `max-entries=N` (keep the N most recently used records), and
 * `cache-mounts=true` (export the build's cache mounts too; `--cache-from …,cache-mounts=false`
 * does not seed them).
 */
export function parseCacheSpec(value: string, direction: 'to' | 'from'): CacheSpec {
  const flag = direction === 'to' ? '--cache-to' : '--cache-from';
  if (!value.includes('=')) return { type: 'registry', ref: value, mode: 'min' };
  const kv: Record<string, string> = {};
  for (const part of value.split(',')) {
    const i = part.indexOf('=');
    if (i <= 0) throw new CacheError('CACHE_SPEC_INVALID', `${flag} "${value}": expected key=value pairs, e.g. type=registry,ref=REGISTRY/REPO:cache`);
    kv[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  const mode = kv.mode ?? 'min';
  if (mode !== 'min' && mode !== 'max') throw new CacheError('CACHE_SPEC_INVALID', `${flag} mode must be min or max, not "${mode}"`);
  const type = kv.type ?? 'registry';
  if (type === 'registry') {
    if (!kv.ref) throw new CacheError('CACHE_SPEC_INVALID', `${flag} type=registry needs ref=REGISTRY/REPO:TAG`);
    return { type, ref: kv.ref, mode, ...parseBounds(kv, flag, direction), ...parseCacheMounts(kv, flag) };
  }
  if (type === 'local') {
    const dir = direction === 'to' ? kv.dest : kv.src;
    if (!dir) throw new CacheError('CACHE_SPEC_INVALID', `${flag} type=local needs ${direction === 'to' ? 'dest' : 'src'}=DIR`);
    return { type, dir, mode, ...parseBounds(kv, flag, direction), ...parseCacheMounts(kv, flag) };
  }
  throw new CacheError('CACHE_SPEC_INVALID', `${flag} type must be registry or local, not "${type}"`);
}
