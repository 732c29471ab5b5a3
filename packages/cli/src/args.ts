import { promises as fsp } from 'node:fs';
import { BuildError, parseEntitlements, parseSeccompProfile, type Entitlement, type SeccompSetting, type Secret } from '@hoist/builder';
import { UsageError } from './errors.js';

/** `K=V` pairs; with `envFallback`, a bare `K` takes its value from the environment (as docker does). */
export function parseKeyValues(list: string[], flag: string, envFallback = false): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const i = item.indexOf('=');
    if (i === 0) throw new UsageError(`${flag} "${item}": expected KEY=VALUE`);
    if (i < 0) {
      if (!envFallback) throw new UsageError(`${flag} "${item}": expected KEY=VALUE`);
      const v = process.env[item];
      if (v !== undefined) out[item] = v;
      continue;
    }
    out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}

/** `--secret id=ID[,src=FILE|,env=VAR]` as in docker buildx. */
export async function readSecrets(list: string[]): Promise<Secret[]> {
  const out: Secret[] = [];
  for (const spec of list) {
    const kv: Record<string, string> = {};
    for (const part of spec.split(',')) {
      const i = part.indexOf('=');
      if (i < 0) throw new UsageError(`--secret "${spec}": expected id=ID,src=FILE or id=ID,env=VAR`);
      kv[part.slice(0, i)] = part.slice(i + 1);
    }
    const id = kv.id;
    if (!id) throw new UsageError(`--secret "${spec}": id= is required`);
    const src = kv.src ?? kv.source;
    if (src) {
      const data = await fsp.readFile(src).catch(() => {
        throw new UsageError(`--secret ${id}: cannot read ${src}`);
      });
      out.push({ id, data });
    } else {
      const envName = kv.env ?? id;
      const v = process.env[envName];
      if (v === undefined) throw new UsageError(`--secret ${id}: environment variable ${envName} is not set`);
      out.push({ id, data: Buffer.from(v) });
    }
  }
  return out;
}

/** `--security-opt seccomp=unconfined|PATH` (a profile in Docker's format); the last one wins. */
export async function parseSecurityOpts(list: readonly string[]): Promise<SeccompSetting | undefined> {
  let setting: SeccompSetting | undefined;
  for (const opt of list) {
    const m = /^seccomp[=:](.+)$/.exec(opt);
    if (!m) throw new UsageError(`--security-opt "${opt}": only seccomp=unconfined or seccomp=PATH (a profile in Docker's format) is supported`);
    const v = m[1]!;
    if (v === 'unconfined' || v === 'default' || v === 'builtin') {
      setting = v === 'unconfined' ? 'unconfined' : 'default';
      continue;
    }
    const text = await fsp.readFile(v, 'utf8').catch(() => {
      throw new UsageError(`--security-opt seccomp=${v}: cannot read ${v}`);
    });
    setting = asUsage(() => parseSeccompProfile(text, v));
  }
  return setting;
}

/** `--allow network.host` / `--allow security.insecure` (repeatable, or comma-separated). */
export function parseAllow(list: readonly string[]): Entitlement[] {
  return asUsage(() => parseEntitlements(list));
}

function asUsage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof BuildError) throw new UsageError(e.message);
    throw e;
  }
}
