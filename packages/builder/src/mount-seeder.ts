import { unpackCacheMount } from './cache-mount-sync.js';
import type { MountSeeder } from './cache-mounts.js';
import type { BuildEvent, BuildOptions } from './types.js';

function mib(n: number): string {
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/**
 * Seeds a cache mount the store lacks from the first imported cache (`--cache-from`) that
 * exported it. Called only when a RUN that mounts it runs: a fully cached build fetches nothing.
 */
export function remoteMountSeeder(opts: Pick<BuildOptions, 'signal' | 'remoteCaches' | 'store'>, emit: (ev: BuildEvent) => void): MountSeeder {
  return {
    has: (key) => (opts.remoteCaches ?? []).some((rc) => rc.mountLayers?.(key) !== undefined),
    seed: async (key, dir) => {
      const signal = opts.signal;
      for (const rc of opts.remoteCaches ?? []) {
        const m = rc.mountLayers?.(key);
        if (!m) continue;
        let fetched = 0;
        for (const l of m.layers) {
          if (await opts.store.blobs.has(l.digest)) continue;
          await rc.fetchLayer(l, signal ? { signal } : {});
          fetched += l.size;
        }
        await unpackCacheMount(dir, m.layers, opts.store.blobs, signal);
        const id = key.split('\0')[0]!;
        emit({ type: 'info', message: `cache mount ${id}: seeded from the imported cache (${m.files} files, ${mib(m.bytes)}; ${m.layers.length} layers, ${mib(fetched)} fetched)` });
        return true;
      }
      return false;
    },
  };
}
