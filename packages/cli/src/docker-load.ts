import { statSync } from 'node:fs';
import * as http from 'node:http';
import type { Descriptor, ImageStore, Platform } from '@hoist/oci';
import { loadExportImage, writeArchive } from '@hoist/exporter';
import { DockerLoadError, UsageError } from './errors.js';

/** Where the Docker Engine API listens: a unix socket or a tcp address (plain HTTP). */
export type DockerEndpoint = { socketPath: string } | { host: string; port: number };

const DEFAULT_SOCKET = '/var/run/docker.sock';

/** `DOCKER_HOST` (unix:///path or tcp://host:port), else the default socket if it exists. */
export function dockerEndpoint(env: NodeJS.ProcessEnv = process.env, defaultSocket = DEFAULT_SOCKET): DockerEndpoint | undefined {
  const h = env.DOCKER_HOST;
  if (h) {
    if (h.startsWith('unix://')) return isSocket(h.slice('unix://'.length)) ? { socketPath: h.slice('unix://'.length) } : undefined;
    const m = /^tcp:\/\/([^:/]+|\[[^\]]+\]):(\d+)\/?$/.exec(h);
    if (m) return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
    throw new UsageError(`--load: DOCKER_HOST=${h} is not supported; use unix:///path/docker.sock or tcp://HOST:PORT (no TLS)`);
  }
  return isSocket(defaultSocket) ? { socketPath: defaultSocket } : undefined;
}

function isSocket(p: string): boolean {
  try {
    return statSync(p).isSocket();
  } catch {
    return false;
  }
}

/** `--load` needs a daemon: say so before building, and what to do instead. */
export function requireDockerEndpoint(env: NodeJS.ProcessEnv = process.env, defaultSocket = DEFAULT_SOCKET): DockerEndpoint {
  const ep = dockerEndpoint(env, defaultSocket);
  if (!ep) {
    const where = env.DOCKER_HOST ? `nothing listens at DOCKER_HOST=${env.DOCKER_HOST}` : `DOCKER_HOST is not set and there is no ${defaultSocket}`;
    throw new UsageError(
      `--load: no Docker daemon (${where}); write a docker-archive instead with -o type=docker,dest=image.tar and run \`docker load -i image.tar\` where Docker runs`,
    );
  }
  return ep;
}

export interface DockerLoadOptions {
  endpoint: DockerEndpoint;
  store: ImageStore;
  descriptor: Descriptor;
  refs: readonly string[];
  platform?: Platform;
  signal?: AbortSignal;
}

/**
 * Stream the image as a docker-archive into `POST /images/load` (the Engine API `docker load`
 * uses) and return the daemon's "Loaded image" lines; an error in its JSON stream is thrown.
 */
export async function loadIntoDocker(o: DockerLoadOptions): Promise<string[]> {
  try {
    return await postLoad(o);
  } catch (e) {
    if (e instanceof DockerLoadError || o.signal?.aborted) throw e;
    throw new DockerLoadError(`docker load: ${(e as Error).message}`, { cause: e });
  }
}

async function postLoad(o: DockerLoadOptions): Promise<string[]> {
  const img = await loadExportImage(o.store, o.descriptor, { refs: [...o.refs], wholeIndex: false, ...(o.platform ? { platform: o.platform } : {}) });
  const target = 'socketPath' in o.endpoint ? { socketPath: o.endpoint.socketPath } : { host: o.endpoint.host, port: o.endpoint.port };
  const req = http.request({ ...target, method: 'POST', path: '/images/load', headers: { 'content-type': 'application/x-tar' }, ...(o.signal ? { signal: o.signal } : {}) });
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
  await writeArchive([img], req, { format: 'docker', ...(o.signal ? { signal: o.signal } : {}) });
  req.end();
  const res = await response;
  return loadedLines(res.status, res.body);
}

/** The daemon answers a JSON message stream: `{"stream":"Loaded image: …"}` or `{"error":…}`. */
function loadedLines(status: number, body: string): string[] {
  const lines: string[] = [];
  for (const text of body.split('\n').filter((l) => l.trim())) {
    let msg: { stream?: string; error?: string; errorDetail?: { message?: string }; message?: string };
    try {
      msg = JSON.parse(text) as typeof msg;
    } catch {
      msg = { message: text };
    }
    const err = msg.error ?? msg.errorDetail?.message ?? (status >= 400 ? msg.message : undefined);
    if (err) throw new DockerLoadError(`docker load: ${err}`);
    if (msg.stream?.trim()) lines.push(msg.stream.trim());
  }
  if (status >= 400) throw new DockerLoadError(`docker load: the daemon answered HTTP ${status}`);
  return lines;
}
