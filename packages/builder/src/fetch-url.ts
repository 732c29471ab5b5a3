import { createHash } from 'node:crypto';
import { createWriteStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
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
  const res = await fetch(url, signal ? { signal, redirect: 'follow' } : { redirect: 'follow' }).catch((e: unknown) => {
    throw new BuildError('COPY_SOURCE_NOT_FOUND', `${label}: ${(e as Error).message}`, { cause: e });
  });
  if (!res.ok || !res.body) throw new BuildError('COPY_SOURCE_NOT_FOUND', `${label}: HTTP ${res.status} ${res.statusText}`);
  const name = decodeURIComponent(new URL(res.url || url).pathname.split('/').filter(Boolean).pop() ?? '') || '__unnamed__';
  const file = path.join(dir, name);
  const hash = createHash('sha256');
  const src = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
  src.on('data', (d: Buffer) => hash.update(d));
  await pipeline(src, createWriteStream(file, { mode: 0o600 }));
  await fsp.chmod(file, 0o600);
  const got = `sha256:${hash.digest('hex')}`;
  if (checksum && checksum !== got) throw new BuildError('COPY_SOURCE_NOT_FOUND', `${label}: checksum mismatch: expected ${checksum}, got ${got}`);
  const lm = res.headers.get('last-modified');
  if (lm) {
    const t = new Date(lm);
    if (!Number.isNaN(t.getTime())) await fsp.utimes(file, t, t);
  }
  return { name, digest: got };
}
