import { RegistryClient, loadCredentials } from '@hoist/registry-client';
import type { ProgressMode } from './progress.js';
import { loadConfig } from './config.js';
import { UsageError } from './errors.js';
import { listEnv } from './registry-flags.js';

/** A duration in seconds from the environment (fractions allowed), in ms; undefined when unset. */
function envSeconds(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${name} must be a positive number of seconds, not "${v}"`);
  return Math.ceil(n * 1000);
}

/**
 * How long to wait for a silent registry: HOIST_REGISTRY_HEADER_TIMEOUT (seconds per response,
 * default 30) and HOIST_REGISTRY_DEADLINE (seconds for all retries of one request, default 120).
 */
function registryTimeouts(): { headerTimeoutMs?: number; retry?: { totalMs: number } } {
  const header = envSeconds('HOIST_REGISTRY_HEADER_TIMEOUT');
  const total = envSeconds('HOIST_REGISTRY_DEADLINE');
  return { ...(header !== undefined ? { headerTimeoutMs: header } : {}), ...(total !== undefined ? { retry: { totalMs: total } } : {}) };
}

export interface ClientOptions {
  /** Live display hook (tty mode): undefined text removes the line. */
  onTransfer?: (id: string, text: string | undefined) => void;
  insecure?: string[];
}

/** One registry client per command, with byte progress on stderr unless quiet. */
export function makeRegistryClient(progress: ProgressMode = 'plain', o: ClientOptions = {}): RegistryClient {
  const cfg = loadConfig();
  const insecure = [...listEnv('HOIST_INSECURE_REGISTRIES'), ...(cfg.insecureRegistries ?? []), ...(o.insecure ?? [])];
  const tlsCa = listEnv('HOIST_TLS_CA');
  // plain output: one line per blob, when it is done (a live view is the tty mode's)
  const printed = new Set<string>();
  const mb = (n?: number): string => ((n ?? 0) / 1048576).toFixed(1);
  return new RegistryClient({
    ...registryTimeouts(),
    insecureRegistries: insecure,
    ...(tlsCa.length > 0 ? { tlsCa } : {}),
    credentials: loadCredentials(),
    onProgress: (ev: unknown) => {
      if (progress === 'quiet') return;
      const e = ev as { kind?: string; digest?: string; done?: number; total?: number; action?: string };
      if (progress === 'json') {
        process.stderr.write(JSON.stringify({ type: 'transfer', ...e }) + '\n');
        return;
      }
      if (e.kind !== 'blob' || !e.digest) return;
      const finished = e.done !== undefined && e.total !== undefined && e.done >= e.total;
      const text = `${e.action ?? 'transfer'} ${e.digest.slice(7, 19)} ${mb(e.done)}/${mb(e.total)} MiB`;
      if (o.onTransfer) {
        o.onTransfer(e.digest, finished ? undefined : text);
        return;
      }
      if (!finished || printed.has(e.digest)) return;
      printed.add(e.digest);
      process.stderr.write(`${text}\n`);
    },
  });
}
