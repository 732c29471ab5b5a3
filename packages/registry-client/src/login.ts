import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { DOCKER_HUB, DOCKER_HUB_API, writeFileAtomic, withFileLock } from '@hoist/oci';
import { RegistryClient, type RegistryClientOptions } from './client.js';
import { authFilePath, normaliseAuthKey, readConfigFile, runHelper, serverUrl, type CredentialOptions, type DockerConfigFile } from './credentials.js';
import { RegistryError } from './errors.js';

export interface LoginOptions extends CredentialOptions {
  signal?: AbortSignal;
  /** Skip checking the credentials against the registry. */
  noVerify?: boolean;
  /** TLS and insecure-registry settings for the check. */
  client?: Pick<RegistryClientOptions, 'insecureRegistries' | 'tlsCa' | 'certsDirs' | 'userAgent' | 'timeoutMs' | 'headerTimeoutMs' | 'retry'>;
}

/** `docker.io`, `index.docker.io`, `https://host:5000/v2/` … -> the registry as references name it. */
function canonicalRegistry(registry: string): string {
  const r = normaliseAuthKey(registry.trim()).registry;
  return r === DOCKER_HUB_API ? DOCKER_HUB : r;
}

function helperFor(cfg: DockerConfigFile, registry: string): string | undefined {
  const h = Object.entries(cfg.credHelpers ?? {}).find(([k]) => normaliseAuthKey(k).registry === registry)?.[1];
  return h ?? cfg.credsStore;
}

async function updateConfig(file: string, fn: (cfg: DockerConfigFile) => Promise<void> | void): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await withFileLock(`${file}.lock`, async () => {
    const cfg = (await readConfigFile(file)) ?? {};
    await fn(cfg);
    await writeFileAtomic(file, JSON.stringify(cfg, null, '\t') + '\n', 0o600);
  });
}

/**
 * Check `username`/`password` against the registry (as `docker login` does), then save them:
 * through the credential helper the config names for it, else base64 in `auths`.
 * The file is `configPath`, `$REGISTRY_AUTH_FILE` or `$DOCKER_CONFIG/config.json`. Returns the file.
 */
export async function login(registry: string, username: string, password: string, opts: LoginOptions = {}): Promise<string> {
  const reg = canonicalRegistry(registry);
  if (!username || !password) throw new RegistryError('UNAUTHORIZED', 'a user name and a password are needed', { registry: reg, hint: 'Pass --username and the password on stdin' });
  if (!opts.noVerify) {
    const client = new RegistryClient(opts.client ?? {});
    try {
      await client.checkLogin(reg, { username, password }, opts.signal ? { signal: opts.signal } : {});
    } finally {
      client.close();
    }
  }
  const file = authFilePath(opts);
  const key = serverUrl(reg);
  await updateConfig(file, async (cfg) => {
    const helper = helperFor(cfg, reg);
    if (helper) {
      const r = await runHelper(helper, 'store', JSON.stringify({ ServerURL: key, Username: username, Secret: password }), opts.env ?? process.env);
      if (r.code !== 0) throw new RegistryError('CREDENTIALS', `docker-credential-${helper} store failed: ${(r.stdout + r.stderr).trim()}`, { registry: reg });
      // The helper keeps the secret; `auths` only remembers that we logged in.
      cfg.auths = { ...cfg.auths };
      for (const k of Object.keys(cfg.auths)) if (normaliseAuthKey(k).registry === reg && k !== key) delete cfg.auths[k];
      cfg.auths[key] = {};
      return;
    }
    cfg.auths = { ...cfg.auths };
    for (const k of Object.keys(cfg.auths)) if (normaliseAuthKey(k).registry === reg && normaliseAuthKey(k).path === '' && k !== key) delete cfg.auths[k];
    cfg.auths[key] = { auth: Buffer.from(`${username}:${password}`).toString('base64') };
  });
  return file;
}

/** Forget the credentials of a registry (in its helper and in `auths`). Returns whether any were found. */
export async function logout(registry: string, opts: CredentialOptions = {}): Promise<boolean> {
  const reg = canonicalRegistry(registry);
  const file = authFilePath(opts);
  if (!(await readConfigFile(file))) return false;
  let found = false;
  await updateConfig(file, async (cfg) => {
    const helper = helperFor(cfg, reg);
    if (helper) {
      const r = await runHelper(helper, 'erase', serverUrl(reg), opts.env ?? process.env);
      if (r.code === 0) found = true;
      else if (!/not found/i.test(r.stdout + r.stderr)) throw new RegistryError('CREDENTIALS', `docker-credential-${helper} erase failed: ${(r.stdout + r.stderr).trim()}`, { registry: reg });
    }
    for (const k of Object.keys(cfg.auths ?? {})) {
      const n = normaliseAuthKey(k);
      if (n.registry === reg && n.path === '') {
        delete cfg.auths![k];
        found = true;
      }
    }
  });
  return found;
}
