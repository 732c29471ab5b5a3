import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { UsageError } from './errors.js';

// Apart from registry.ts so that applying the flags (before every registry command's action)
// does not load the registry client: a fully cached build never needs it.

/** A comma-separated list from the environment (`--tls-ca` and `--insecure-registry` set these too). */
export function listEnv(name: string): string[] {
  return (process.env[name] ?? '').split(',').map((x) => x.trim()).filter(Boolean);
}

/**
 * `--tls-ca FILE` and `--insecure-registry HOST` of the registry commands: added to
 * HOIST_TLS_CA / HOIST_INSECURE_REGISTRIES for this process (and a rootless child), where every
 * registry client of the command reads them. A CA file that cannot be read is a usage error.
 */
export function applyRegistryFlags(o: { tlsCa?: string[]; insecureRegistry?: string[] }): void {
  for (const f of o.tlsCa ?? []) {
    if (!existsSync(f)) throw new UsageError(`--tls-ca ${f}: no such file (a PEM file with the registry's CA certificate)`);
  }
  const add = (name: string, values: string[] | undefined): void => {
    if (values && values.length > 0) process.env[name] = [...listEnv(name), ...values.map((v) => (name === 'HOIST_TLS_CA' ? path.resolve(v) : v))].join(',');
  };
  add('HOIST_TLS_CA', o.tlsCa);
  add('HOIST_INSECURE_REGISTRIES', o.insecureRegistry);
}

