import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Descriptor } from '@hoist/oci';
import type { ClientContext, RepoRef } from './context.js';
import { RegistryError, isRegistryError } from './errors.js';
import { discard, header, type HttpResponse } from './http.js';
import { CountingStream } from './progress.js';
import { RetryBudget, sleep } from './retry.js';
import type { RegistrySession } from './transport.js';

const READ_CHUNK = 1024 * 1024;

/** An upload session the registry opened (POST …/blobs/uploads/): where to send, and its smallest chunk. */
export interface UploadSession {
  location: URL | string;
  minChunk: number;
}

export interface BlobUploadInit {
  ctx: ClientContext;
  session: RegistrySession;
  repo: RepoRef;
  desc: Descriptor;
  /** Token scopes of the upload requests (`repository:…:pull,push`). */
  scopes: string[];
  /** Bytes the registry has (with `resumed` when it went back). */
  report: (done: number, resumed?: boolean) => void;
  signal?: AbortSignal | undefined;
}

/** The upload session of a 202 answer (a POST to start one, or a cross-mount that did not mount). */
export function uploadSession(res: HttpResponse): UploadSession {
  const loc = header(res, 'location');
  if (!loc) throw new RegistryError('PROTOCOL', 'upload started without a Location header', { registry: res.url.host });
  const min = Number(header(res, 'oci-chunk-min-length'));
  return { location: new URL(loc, res.url), minChunk: Number.isFinite(min) && min > 0 ? min : 0 };
}

/**
 * One blob's upload to one repository: the state every step shares (session, scopes, progress,
 * signal), so that no step takes ten parameters. In one PUT, or in chunks (PATCH with
 * Content-Range) resumed from the offset the registry reports after an interruption.
 */
export class BlobUpload {
  constructor(private readonly o: BlobUploadInit) {}

  private get sig(): { signal?: AbortSignal } {
    return this.o.signal ? { signal: this.o.signal } : {};
  }

  async start(): Promise<UploadSession> {
    const { session, repo } = this.o;
    const res = await session.request({ method: 'POST', url: `/v2/${repo.repository}/blobs/uploads/`, repository: repo.repository, scopes: this.o.scopes, ...this.sig });
    if (res.status !== 202) await session.fail(res, 'cannot start a blob upload', repo.repository);
    discard(res.body);
    return uploadSession(res);
  }

  /** The whole blob in one PUT; `open` is called again for each try. */
  async monolithic(up: UploadSession, open: () => Readable): Promise<void> {
    const res = await this.o.session.request({
      method: 'PUT',
      url: withDigest(up.location, this.o.desc.digest),
      repository: this.o.repo.repository,
      scopes: this.o.scopes,
      headers: { 'content-type': 'application/octet-stream' },
      // No hashing here: the registry verifies the digest on PUT (and refuses a corrupt blob).
      body: { open: () => pipeCounting(open(), this.o.report), length: this.o.desc.size },
      retry: false,
      ...this.sig,
    });
    await this.finish(res);
  }

  /** The blob in `file` in chunks of `chunk` bytes, resuming from where the registry says it stands. */
  async chunked(up: UploadSession, file: string, chunk: number): Promise<void> {
    const { desc } = this.o;
    let loc = up.location;
    let offset = 0;
    const budget = new RetryBudget(this.o.ctx.retry, { deadline: false });
    while (offset < desc.size) {
      const end = Math.min(offset + chunk, desc.size);
      try {
        const sent = await this.patch(loc, file, offset, end);
        if (sent) {
          [loc, offset] = [sent.location, sent.offset];
          budget.progressed();
          continue;
        }
      } catch (e) {
        const wait = networkish(e) ? budget.next() : undefined;
        if (wait === undefined) throw e;
        await sleep(wait, this.o.signal);
      }
      // Interrupted or out of step: ask the registry where the upload stands and go on from there.
      const status = await this.status(loc);
      if (!status || status.offset > desc.size) throw this.error('UNAVAILABLE', `upload of ${desc.digest} was interrupted and the registry cannot resume it`);
      [loc, offset] = [status.location, status.offset];
      this.o.report(offset, true);
    }
    const res = await this.o.session.request({ method: 'PUT', url: withDigest(loc, desc.digest), repository: this.o.repo.repository, scopes: this.o.scopes, ...this.sig, retry: false });
    await this.finish(res);
  }

  /** One chunk; its new location and offset, or undefined when the registry is out of step (416). */
  private async patch(loc: URL | string, file: string, start: number, end: number): Promise<{ location: URL | string; offset: number } | undefined> {
    const { session, repo, desc, report } = this.o;
    const res = await session.request({
      method: 'PATCH',
      url: loc,
      repository: repo.repository,
      scopes: this.o.scopes,
      headers: { 'content-type': 'application/octet-stream', 'content-range': `${start}-${end - 1}` },
      body: { open: () => createReadStream(file, { start, end: end - 1, highWaterMark: READ_CHUNK }).pipe(new CountingStream(start, report)), length: end - start },
      retry: false,
      ...this.sig,
    });
    if (res.status === 202 || res.status === 204) {
      discard(res.body);
      const l = header(res, 'location');
      const m = /^(?:bytes[= ])?(\d+)-(\d+)$/.exec(header(res, 'range') ?? '');
      const offset = m ? Number(m[2]) + 1 : end;
      if (offset !== end) throw this.error('PROTOCOL', `upload of ${desc.digest}: sent up to ${end}, the registry has ${offset}`);
      return { location: l ? new URL(l, res.url) : loc, offset };
    }
    if (res.status !== 416) await session.fail(res, `chunk ${start}-${end - 1} of blob ${desc.digest} was refused`, repo.repository);
    discard(res.body);
    return undefined;
  }

  /** Where the registry says an upload stands (GET on the upload URL): next offset and URL. */
  private async status(loc: URL | string): Promise<{ offset: number; location: URL | string } | undefined> {
    const res = await this.o.session.request({ method: 'GET', url: loc, repository: this.o.repo.repository, scopes: this.o.scopes, ...this.sig });
    discard(res.body);
    if (res.status !== 204 && res.status !== 200) return undefined; // unknown or invalidated: start again
    const m = /^(?:bytes[= ])?(\d+)-(\d+)$/.exec(header(res, 'range') ?? '');
    const next = m ? Number(m[2]) + 1 : 0;
    const l = header(res, 'location');
    return { offset: m && next === 1 && Number(m[1]) === 0 ? 0 : next, location: l ? new URL(l, res.url) : loc };
  }

  private async finish(res: HttpResponse): Promise<void> {
    const { session, repo, desc } = this.o;
    if (res.status !== 201 && res.status !== 204) await session.fail(res, `upload of blob ${desc.digest} failed`, repo.repository);
    discard(res.body);
    const d = header(res, 'docker-content-digest');
    if (d && d.startsWith('sha256:') && d !== desc.digest) throw new RegistryError('DIGEST_MISMATCH', `the registry stored blob ${desc.digest} as ${d}`, { registry: repo.registry, repository: repo.repository });
  }

  private error(code: 'UNAVAILABLE' | 'PROTOCOL', message: string): RegistryError {
    return new RegistryError(code, message, { registry: this.o.repo.registry, repository: this.o.repo.repository, temporary: true });
  }
}

function pipeCounting(src: Readable, report: (n: number) => void): Readable {
  const counter = new CountingStream(0, report);
  src.on('error', (e) => counter.destroy(e));
  counter.on('close', () => src.destroy());
  return src.pipe(counter);
}

function withDigest(loc: URL | string, digest: string): URL {
  const u = new URL(loc);
  u.searchParams.set('digest', digest);
  return u;
}

function networkish(e: unknown): boolean {
  return isRegistryError(e) && e.code !== 'TIMEOUT' && (e.code === 'NETWORK' || e.temporary);
}
