import { createHash } from 'node:crypto';
import { createWriteStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import * as http from 'node:http';
import * as https from 'node:https';
import * as tls from 'node:tls';
import { pipeline } from 'node:stream/promises';
import { contextTrusting, deferredCaCerts } from '@hoist/oci';
import { BuildError } from './errors.js';

export function isUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

/**
 * Download a URL into `dir` as BuildKit's HTTP source does (ADD <url>, an http named context):
 * mode 0600, the Last-Modified header as mtime, the file named after the URL's last path
 * component; `checksum` verified. Returns the file's name and the `sha256:` digest of its content.
 */
export interface FetchUrlOptions {
  /** `sha256:…` the content must have (ADD --checksum). */
  checksum?: string;
  signal?: AbortSignal;
  /** How errors name the source (default `ADD <url>`). */
  label?: string;
}

export async function fetchUrl(url: string, dir: string, o: FetchUrlOptions = {}): Promise<{ name: string; digest: string }> {
  const { checksum, signal } = o;
  const label = o.label ?? `ADD ${url}`;
  const res = await get(new URL(url), signal).catch((e: unknown) => {
    throw new BuildError('COPY_SOURCE_NOT_FOUND', `${label}: ${(e as Error).message}`, { cause: e });
  });
  if (res.status < 200 || res.status > 299) {
    res.body.resume();
    throw new BuildError('COPY_SOURCE_NOT_FOUND', `${label}: HTTP ${res.status} ${res.body.statusMessage ?? ''}`.trimEnd());
  }
  const name = decodeURIComponent(res.url.pathname.split('/').filter(Boolean).pop() ?? '') || '__unnamed__';
  const file = path.join(dir, name);
  const hash = createHash('sha256');
  res.body.on('data', (d: Buffer) => hash.update(d));
  await pipeline(res.body, createWriteStream(file, { mode: 0o600 }));
  await fsp.chmod(file, 0o600);
  const got = `sha256:${hash.digest('hex')}`;
  if (checksum && checksum !== got) throw new BuildError('COPY_SOURCE_NOT_FOUND', `${label}: checksum mismatch: expected ${checksum}, got ${got}`);
  const lm = res.body.headers['last-modified'];
  if (lm) {
    const t = new Date(lm);
    if (!Number.isNaN(t.getTime())) await fsp.utimes(file, t, t);
  }
  return { name, digest: got };
}

/** As many redirects as fetch() follows. */
const MAX_REDIRECTS = 20;

/**
 * GET `url`, following redirects (relative ones too), as fetch() does. node:http(s) and not
 * fetch(): an https request trusts the certificates NODE_EXTRA_CA_CERTS names, which the hoist
 * bin defers (see @hoist/oci's extra-ca.ts), and fetch() in Node 20 takes no CA option.
 */
async function get(url: URL, signal: AbortSignal | undefined): Promise<{ status: number; url: URL; body: http.IncomingMessage }> {
  let ca: tls.SecureContext | null | undefined; // made once, at the first https hop
  for (let hop = 0; ; hop++) {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`cannot fetch ${url.protocol} URLs`);
    if (url.protocol === 'https:' && ca === undefined) ca = trustedContext();
    const res = await request(url, { signal, ca });
    const location = res.headers.location;
    if (!REDIRECTS.has(res.statusCode ?? 0) || !location) return { status: res.statusCode ?? 0, url, body: res };
    res.resume();
    if (hop >= MAX_REDIRECTS) throw new Error(`more than ${MAX_REDIRECTS} redirects`);
    url = new URL(location, url);
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** Node's roots and the deferred NODE_EXTRA_CA_CERTS, or null when there is none (Node's default context). */
function trustedContext(): tls.SecureContext | null {
  const extra = deferredCaCerts();
  return extra.length > 0 ? contextTrusting(extra) : null;
}

/** One GET; an https one trusts `ca` when given, else Node's roots. */
function request(url: URL, o: { signal: AbortSignal | undefined; ca: tls.SecureContext | null | undefined }): Promise<http.IncomingMessage> {
  const ca = url.protocol === 'https:' ? o.ca : undefined;
  const opts: https.RequestOptions = { method: 'GET', ...(o.signal ? { signal: o.signal } : {}), ...(ca ? { secureContext: ca } : {}) };
  return new Promise((resolve, reject) => {
    const req = (url.protocol === 'https:' ? https : http).request(url, opts, resolve);
    req.on('error', reject);
    req.end();
  });
}
