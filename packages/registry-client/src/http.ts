/*
 * Why node:http and not undici (DESIGN.md names undici): written down as issue 14 asks.
 * - No dependency: node:http/https ship with Node; the `undici` API is not exposed by Node 20
 *   (only `fetch`), so it would be one more package to install, audit and keep in step.
 * - TLS per registry host as Docker does it (certs.d: a CA, a client certificate and key per
 *   `host[:port]`; insecure hosts) is one https.Agent per host here (AgentPool below); undici
 *   can do the same with an Agent per host, so this is parity, not a gain either way.
 * - The redirect loop stays in any case: credentials must not follow a redirect to another
 *   origin (blob storage), a 303 turns a request into GET, and the hop count is capped. undici's
 *   redirect handling would have to be switched off and done by hand as it is now.
 * - Timeouts: a silent registry is caught by the socket idle timeout and the header timeout of
 *   `send`; the silent-registry and faults tests pin that behaviour on this code.
 * Revisit when Node exposes undici's Agent/dispatcher API itself or HTTP/2 to registries matters.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import * as tls from 'node:tls';
import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { contextTrusting, deferredCaCerts } from '@hoist/oci';

/** A request body: bytes (replayable) or a factory of streams (re-opened on retry). */
export type Body = Buffer | { open: () => Readable; length: number };

export interface HttpRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body?: Body;
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: http.IncomingMessage;
  url: URL;
}

export interface TlsConfig {
  /** Extra CA certificates: PEM text or paths of PEM files. */
  tlsCa?: string[];
  /** Directories laid out as `<dir>/<host[:port]>/{ca.crt,client.cert,client.key}` (Docker's certs.d). */
  certsDirs?: string[];
  /** Hosts whose certificates are not verified (`insecureRegistries`). */
  insecure?: (hostPort: string) => boolean;
  /** Idle socket timeout. */
  timeoutMs?: number;
}

export const DEFAULT_CERTS_DIRS = ['/etc/docker/certs.d', '/etc/containers/certs.d'];
const SYSTEM_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt'];

/**
 * Keep-alive agents per scheme and host, each with the CAs for that host: Node's roots, the
 * system bundle, `tlsCa` and the host's `certs.d` directory (client certificates too).
 * Owned by one client; `close()` destroys the sockets.
 */
export class AgentPool {
  private readonly agents = new Map<string, http.Agent>();
  private baseCa: string[] | undefined;
  private deferredCa: string[] | undefined;
  constructor(private readonly cfg: TlsConfig) {}

  private readonly withSystem = new Set<string>();

  get(url: URL): http.Agent {
    const key = `${url.protocol}//${url.host}`;
    let agent = this.agents.get(key);
    if (!agent) {
      agent = url.protocol === 'https:' ? new https.Agent({ keepAlive: true, ...this.tlsOptions(url.host, this.withSystem.has(key)) }) : new http.Agent({ keepAlive: true });
      this.agents.set(key, agent);
    }
    return agent;
  }

  /**
   * After a verification failure: rebuild the host's agent with the system CA bundle too
   * (loaded lazily — parsing it costs more than most registry operations). False when it
   * already had it, or there is none.
   */
  addSystemCa(url: URL): boolean {
    const key = `${url.protocol}//${url.host}`;
    if (url.protocol !== 'https:' || this.withSystem.has(key) || this.systemBundle().length === 0) return false;
    this.withSystem.add(key);
    this.agents.get(key)?.destroy();
    this.agents.delete(key);
    return true;
  }

  private tlsOptions(hostPort: string, withSystem: boolean): https.AgentOptions {
    const client: tls.SecureContextOptions = {};
    const extra: string[] = [];
    for (const dir of this.cfg.certsDirs ?? DEFAULT_CERTS_DIRS) extra.push(...readCertsDir(path.join(dir, hostPort.replace(/^\[|\]$/g, '')), client));
    for (const ca of this.cfg.tlsCa ?? []) extra.push(ca.includes('-----BEGIN') ? ca : readFileSync(ca, 'utf8'));
    // NODE_EXTRA_CA_CERTS, deferred by the hoist bin (see @hoist/oci's extra-ca.ts): read once per pool
    this.deferredCa ??= deferredCaCerts();
    extra.push(...this.deferredCa);
    if (withSystem) extra.push(...this.systemBundle());
    // Node's default context when nothing is added (its roots are parsed once per process)
    const opts: https.AgentOptions = extra.length || client.key ? { secureContext: contextTrusting(extra, client) } : {};
    if (this.cfg.insecure?.(hostPort)) opts.rejectUnauthorized = false;
    return opts;
  }

  private systemBundle(): string[] {
    if (!this.baseCa) {
      this.baseCa = [];
      for (const f of SYSTEM_BUNDLES) {
        try {
          this.baseCa.push(readFileSync(f, 'utf8'));
          break;
        } catch {
          /* not on this system */
        }
      }
    }
    return this.baseCa;
  }

  close(): void {
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
  }
}

/**
 * The CA certificates (`*.crt`) of one Docker certs.d host directory, and its client
 * certificate (`*.cert` with the `*.key` beside it) put into `client`; none when it is missing.
 */
function readCertsDir(hostDir: string, client: tls.SecureContextOptions): string[] {
  let names: string[];
  try {
    names = readdirSync(hostDir).sort();
  } catch {
    return [];
  }
  const cas: string[] = [];
  for (const n of names) {
    if (n.endsWith('.crt')) cas.push(readFileSync(path.join(hostDir, n), 'utf8'));
    if (n.endsWith('.cert')) {
      try {
        client.key = readFileSync(path.join(hostDir, n.replace(/\.cert$/, '.key')), 'utf8');
        client.cert = readFileSync(path.join(hostDir, n), 'utf8');
      } catch {
        /* a cert without its key is ignored, as Docker does */
      }
    }
  }
  return cas;
}

/**
 * Send one request; resolves with the response head (the body is left to the caller to read).
 * A certificate the default roots cannot verify is tried once more with the system CA bundle.
 */
export async function send(pool: AgentPool, req: HttpRequest, timeoutMs: number): Promise<HttpResponse> {
  try {
    return await sendOnce(pool, req, timeoutMs);
  } catch (e) {
    if (isCertificateError(e) && pool.addSystemCa(req.url)) return sendOnce(pool, req, timeoutMs);
    throw e;
  }
}

function sendOnce(pool: AgentPool, req: HttpRequest, timeoutMs: number): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const mod = req.url.protocol === 'https:' ? https : http;
    const headers: Record<string, string> = { ...req.headers };
    const body = req.body;
    if (body !== undefined) headers['content-length'] = String(Buffer.isBuffer(body) ? body.length : body.length);
    else if (req.method === 'PUT' || req.method === 'POST' || req.method === 'PATCH') headers['content-length'] = '0';
    let settled = false;
    const cr = mod.request(
      req.url,
      { method: req.method, headers, agent: pool.get(req.url), ...(req.signal ? { signal: req.signal } : {}) },
      (res) => {
        settled = true;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, url: req.url });
      },
    );
    cr.setTimeout(timeoutMs, () => {
      const text = settled ? `no data from ${req.url.host} for ${timeoutMs} ms` : `no response from ${req.url.host} within ${timeoutMs} ms`;
      const e = Object.assign(new Error(text), { code: 'ETIMEDOUT', noResponse: !settled });
      cr.destroy(e);
    });
    cr.on('error', (e) => {
      if (!settled) {
        settled = true;
        reject(e);
      }
    });
    if (body === undefined) cr.end();
    else if (Buffer.isBuffer(body)) cr.end(body);
    else {
      const src = body.open();
      src.on('error', (e) => cr.destroy(e));
      cr.on('close', () => src.destroy());
      src.pipe(cr);
    }
  });
}

/** Read a response body into memory, failing past `max` bytes. */
export async function readBody(res: http.IncomingMessage, max: number): Promise<Buffer> {
  const len = Number(res.headers['content-length']);
  if (Number.isFinite(len) && len > max) {
    res.destroy();
    throw Object.assign(new Error(`response of ${len} bytes exceeds the ${max}-byte limit`), { code: 'TOO_LARGE' });
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > max) {
      res.destroy();
      throw Object.assign(new Error(`response exceeds the ${max}-byte limit`), { code: 'TOO_LARGE' });
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/** Discard a response body so the socket can be reused (small bodies) or closed (large ones). */
export function discard(res: http.IncomingMessage): void {
  const len = Number(res.headers['content-length']);
  if (Number.isFinite(len) && len > 64 * 1024) res.destroy();
  else res.resume();
}

export function header(res: { headers: http.IncomingHttpHeaders }, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** Network errors worth retrying (a fresh connection may well succeed). */
export function isRetriableNetworkError(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code && ['ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'UND_ERR_SOCKET', 'ERR_STREAM_PREMATURE_CLOSE', 'HPE_INVALID_CHUNK_SIZE'].includes(code)) return true;
  const msg = (e as Error)?.message ?? '';
  return /socket hang up|aborted|premature close|ECONNRESET/i.test(msg);
}

/** A request the server never answered (no response head before the timeout). */
export function isNoResponse(e: unknown): boolean {
  return (e as { noResponse?: unknown })?.noResponse === true;
}

/** TLS certificate verification errors: never retried, never downgraded to plain HTTP. */
export function isCertificateError(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException)?.code ?? '';
  return /CERT|UNABLE_TO_|SELF_SIGNED|DEPTH_ZERO|HOSTNAME|ALTNAME|ERR_TLS_CERT/.test(code);
}

export function isAbortError(e: unknown): boolean {
  return (e as Error)?.name === 'AbortError' || (e as NodeJS.ErrnoException)?.code === 'ABORT_ERR';
}
