import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { run } from './tools.js';
import { tempDir } from './temp.js';

export interface RegistryOptions {
  /** Extra YAML appended under the top level of the registry config (auth:, http.tls, ...). */
  extraConfig?: string;
  /** Extra `http:` keys (indented by 2), e.g. a TLS block. */
  httpExtra?: string;
  /** Use https when probing for readiness. */
  tls?: boolean;
  /** CA for the readiness probe when `tls` is set. */
  caFile?: string;
  /** `storage.delete.enabled` (default true); false makes DELETE answer 405 UNSUPPORTED. */
  deleteEnabled?: boolean;
}

export interface RunningRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  port: number;
  storageDir: string;
  dir: string;
  logs(): string;
  /**
   * Stop the registry, run its offline `garbage-collect` (with `--delete-untagged` if asked),
   * start it again on the same port; resolves with the command's output.
   */
  garbageCollect(opts?: { deleteUntagged?: boolean }): Promise<string>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** The registry binary: Debian's `docker-registry` (distribution v2). */
export const REGISTRY_BIN = process.env.HOIST_REGISTRY_BIN ?? '/usr/bin/docker-registry';

/**
 * Start the real distribution registry on 127.0.0.1 on a free port, storage in a temp dir.
 * Resolves when it answers `/v2/`.
 */
export async function startRegistry(opts: RegistryOptions = {}): Promise<RunningRegistry> {
  const dir = await tempDir('registry');
  const storageDir = path.join(dir, 'storage');
  await fsp.mkdir(storageDir);
  const port = await freePort();
  const config = [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${storageDir}`,
    '  delete:',
    `    enabled: ${opts.deleteEnabled === false ? 'false' : 'true'}`,
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '  secret: hoist-test-secret',
    ...(opts.httpExtra ? [opts.httpExtra.replace(/\n$/, '')] : []),
    ...(opts.extraConfig ? [opts.extraConfig.replace(/\n$/, '')] : []),
    '',
  ].join('\n');
  const cfgFile = path.join(dir, 'config.yml');
  await fsp.writeFile(cfgFile, config);
  const host = `127.0.0.1:${port}`;
  let server = await serve(cfgFile, port);
  return {
    host,
    port,
    storageDir,
    dir,
    logs: () => server.out(),
    garbageCollect: async (o = {}) => {
      await server.stop();
      const r = await run(REGISTRY_BIN, ['garbage-collect', ...(o.deleteUntagged ? ['--delete-untagged'] : []), cfgFile]);
      server = await serve(cfgFile, port);
      if (r.code !== 0) throw new Error(`registry garbage-collect failed:\n${r.stdout}${r.stderr}`);
      return r.stdout + r.stderr;
    },
    stop: async () => {
      await server.stop();
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
}

/** One `docker-registry serve` process, resolved when it answers on `port`. */
async function serve(cfgFile: string, port: number): Promise<{ out(): string; stop(): Promise<void> }> {
  let out = '';
  const child: ChildProcess = spawn(REGISTRY_BIN, ['serve', cfgFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  let exited = false;
  child.on('exit', () => (exited = true));
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (exited) throw new Error(`docker-registry exited at start:\n${out}`);
    if (await probe(port)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`docker-registry did not listen on 127.0.0.1:${port} within 20 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    out: () => out,
    stop: async () => {
      if (exited) return;
      const done = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([done, new Promise((r) => (timer = setTimeout(r, 5000)))]);
      clearTimeout(timer);
      if (!exited) {
        child.kill('SIGKILL');
        await done;
      }
    },
  };
}

function probe(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
