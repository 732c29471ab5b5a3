import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { BlobStore, Descriptor } from '@hoist/oci';
import { repoScope } from './auth.js';
import { repoName, type ClientContext, type RepoRef } from './context.js';
import { RegistryError, isRegistryError } from './errors.js';
import { discard, header, type HttpResponse } from './http.js';
import { CountingStream, blobReporter } from './progress.js';
import { RetryBudget, sleep } from './retry.js';
import type { RegistrySession } from './transport.js';

const READ_CHUNK = 1024 * 1024;

export type BlobPushResult = 'exists' | 'mounted' | 'uploaded';

/** Does the repository have this blob? (HEAD; 404 is no, anything else unexpected fails) */
export async function blobExists(session: RegistrySession, r: RepoRef, desc: Pick<Descriptor, 'digest' | 'size'>, scopes: string[], signal?: AbortSignal): Promise<boolean> {
  const res = await session.request({ method: 'HEAD', url: `/v2/${r.repository}/blobs/${desc.digest}`, repository: r.repository, scopes, ...(signal ? { signal } : {}) });
  discard(res.body);
  if (res.status === 200) {
    const len = header(res, 'content-length');
    return len === undefined || Number(len) === desc.size;
  }
  if (res.status === 404) return false;
  return session.fail(res, `cannot check blob ${desc.digest}`, r.repository);
}

/**
 * Make `desc` present in the repository: skip it if there (HEAD), mount it from another
 * repository of the same registry if one of `mountFrom` has it, else upload it from `blobs` —
 * in one PUT, or in chunks (PATCH with Content-Range) when larger than the chunk size, resuming an
 * interrupted chunked upload from the offset the registry reports.
 */
export async function pushBlob(ctx: ClientContext, r: RepoRef, desc: Descriptor, blobs: BlobStore, mountFrom: string[], signal?: AbortSignal): Promise<BlobPushResult> {
  const key = `push\0${repoName(r)}\0${desc.digest}`;
  let p = ctx.inflight.get(key) as Promise<BlobPushResult> | undefined;
  if (!p) {
    p = ctx.limit(() => pushBlobOnce(ctx, r, desc, blobs, mountFrom, signal));
    ctx.inflight.set(key, p as Promise<never>);
    void p.finally(() => ctx.inflight.delete(key)).catch(() => undefined);
  }
  return p;
}

async function pushBlobOnce(ctx: ClientContext, r: RepoRef, desc: Descriptor, blobs: BlobStore, mountFrom: string[], signal?: AbortSignal): Promise<BlobPushResult> {
  const session = ctx.session(r.registry);
  const push = [repoScope(r.repository, 'pull,push')];
  const base = { kind: 'blob' as const, ref: repoName(r), digest: desc.digest, total: desc.size };
  if (await blobExists(session, r, desc, push, signal)) {
    ctx.emit?.({ ...base, action: 'exists', done: desc.size });
    return 'exists';
  }
  const st = await blobs.stat(desc.digest);
  if (st && st.size !== desc.size) throw new RegistryError('SIZE_MISMATCH', `local blob ${desc.digest} is ${st.size} bytes, its descriptor says ${desc.size}`, { registry: r.registry, repository: r.repository, hint: 'The local store is damaged; run `hoist fsck`' });

  let upload: UploadSession | undefined;
  for (const from of [...new Set(mountFrom)].filter((f) => f !== r.repository)) {
    const res = await session.request({
      method: 'POST',
      url: `/v2/${r.repository}/blobs/uploads/?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(from)}`,
      repository: r.repository,
      scopes: [...push, repoScope(from, 'pull')],
      ...(signal ? { signal } : {}),
    });
    if (res.status === 201) {
      discard(res.body);
      ctx.emit?.({ ...base, action: 'mount', done: desc.size });
      return 'mounted';
    }
    if (res.status === 202) {
      // Not mounted, but an upload session was opened: use it.
      upload = uploadSession(res);
      discard(res.body);
      break;
    }
    discard(res.body); // 401/403/404: mounting is an optimisation; try the next source or upload
  }

  // Not in the local store (a lazily resolved base layer): copy it from where it is known to be.
  const remote = st ? undefined : ctx.remoteSource?.(desc, r);
  if (!st && !remote) {
    throw new RegistryError('BLOB_UNKNOWN', `blob ${desc.digest} is neither in the local store nor in ${r.repository}`, {
      registry: r.registry,
      repository: r.repository,
      hint: 'Pull the base image into the local store (or push from a store that has all layers), then push again',
    });
  }
  const report = blobReporter(ctx.emit, { ...base, action: 'push' });
  // attempts only: an upload may take long, and a TIMEOUT already used up its request's deadline
  const budget = new RetryBudget(ctx.retry, { deadline: false });
  for (;;) {
    try {
      upload ??= await startUpload(session, r, push, signal);
      const chunk = Math.max(ctx.chunkSize, upload.minChunk);
      if (remote) await monolithic(session, r, desc, () => remote(signal), upload, push, report, signal);
      else if (desc.size <= chunk) await monolithic(session, r, desc, () => createReadStream(blobs.path(desc.digest), { highWaterMark: READ_CHUNK }), upload, push, report, signal);
      else await chunked(ctx, session, r, desc, blobs, upload, chunk, push, report, signal);
      return 'uploaded';
    } catch (e) {
      upload = undefined;
      // a TIMEOUT already used up the request's retry deadline: do not start over
      const wait = isRegistryError(e) && e.temporary && e.code !== 'TIMEOUT' ? budget.next() : undefined;
      if (wait === undefined) throw e;
      await sleep(wait, signal);
      // The final PUT may have landed even though its answer was lost.
      if (await blobExists(session, r, desc, push, signal)) return 'uploaded';
      report(0, true);
    }
  }
}

interface UploadSession {
  location: URL | string;
  minChunk: number;
}

function pipeCounting(src: Readable, report: (n: number) => void): Readable {
  const counter = new CountingStream(0, report);
  src.on('error', (e) => counter.destroy(e));
  counter.on('close', () => src.destroy());
  return src.pipe(counter);
}

function uploadSession(res: HttpResponse): UploadSession {
  const loc = header(res, 'location');
  if (!loc) throw new RegistryError('PROTOCOL', 'upload started without a Location header', { registry: res.url.host });
  const min = Number(header(res, 'oci-chunk-min-length'));
  return { location: new URL(loc, res.url), minChunk: Number.isFinite(min) && min > 0 ? min : 0 };
}

async function startUpload(session: RegistrySession, r: RepoRef, scopes: string[], signal?: AbortSignal): Promise<UploadSession> {
  const res = await session.request({ method: 'POST', url: `/v2/${r.repository}/blobs/uploads/`, repository: r.repository, scopes, ...(signal ? { signal } : {}) });
  if (res.status !== 202) await session.fail(res, 'cannot start a blob upload', r.repository);
  discard(res.body);
  return uploadSession(res);
}

function withDigest(loc: URL | string, digest: string): URL {
  const u = new URL(loc);
  u.searchParams.set('digest', digest);
  return u;
}

function networkish(e: unknown): boolean {
  return isRegistryError(e) && e.code !== 'TIMEOUT' && (e.code === 'NETWORK' || e.temporary);
}

async function finish(session: RegistrySession, r: RepoRef, desc: Descriptor, res: HttpResponse, what: string): Promise<void> {
  if (res.status !== 201 && res.status !== 204) await session.fail(res, `${what} of blob ${desc.digest} failed`, r.repository);
  discard(res.body);
  const d = header(res, 'docker-content-digest');
  if (d && d.startsWith('sha256:') && d !== desc.digest) {
    throw new RegistryError('DIGEST_MISMATCH', `the registry stored blob ${desc.digest} as ${d}`, { registry: r.registry, repository: r.repository });
  }
}

async function monolithic(session: RegistrySession, r: RepoRef, desc: Descriptor, open: () => Readable, up: UploadSession, scopes: string[], report: (n: number) => void, signal?: AbortSignal): Promise<void> {
  const res = await session.request({
    method: 'PUT',
    url: withDigest(up.location, desc.digest),
    repository: r.repository,
    scopes,
    headers: { 'content-type': 'application/octet-stream' },
    // No hashing here: the registry verifies the digest on PUT (and refuses a corrupt blob).
    body: { open: () => pipeCounting(open(), report), length: desc.size },
    retry: false,
    ...(signal ? { signal } : {}),
  });
  await finish(session, r, desc, res, 'upload');
}

/** Where the registry says an upload stands (GET on the upload URL): next offset and URL. */
async function uploadStatus(session: RegistrySession, r: RepoRef, loc: URL | string, scopes: string[], signal?: AbortSignal): Promise<{ offset: number; location: URL | string } | undefined> {
  const res = await session.request({ method: 'GET', url: loc, repository: r.repository, scopes, ...(signal ? { signal } : {}) });
  discard(res.body);
  if (res.status !== 204 && res.status !== 200) return undefined; // unknown or invalidated: start again
  const m = /^(?:bytes[= ])?(\d+)-(\d+)$/.exec(header(res, 'range') ?? '');
  const next = m ? Number(m[2]) + 1 : 0;
  const l = header(res, 'location');
  return { offset: m && next === 1 && Number(m[1]) === 0 ? 0 : next, location: l ? new URL(l, res.url) : loc };
}

async function chunked(ctx: ClientContext, session: RegistrySession, r: RepoRef, desc: Descriptor, blobs: BlobStore, up: UploadSession, chunk: number, scopes: string[], report: (n: number, resumed?: boolean) => void, signal?: AbortSignal): Promise<void> {
  const file = blobs.path(desc.digest);
  let loc = up.location;
  let offset = 0;
  const budget = new RetryBudget(ctx.retry, { deadline: false });
  while (offset < desc.size) {
    const end = Math.min(offset + chunk, desc.size);
    const start = offset;
    try {
      const res = await session.request({
        method: 'PATCH',
        url: loc,
        repository: r.repository,
        scopes,
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${start}-${end - 1}` },
        body: { open: () => createReadStream(file, { start, end: end - 1, highWaterMark: READ_CHUNK }).pipe(new CountingStream(start, report)), length: end - start },
        retry: false,
        ...(signal ? { signal } : {}),
      });
      if (res.status === 202 || res.status === 204) {
        discard(res.body);
        const l = header(res, 'location');
        if (l) loc = new URL(l, res.url);
        const m = /^(?:bytes[= ])?(\d+)-(\d+)$/.exec(header(res, 'range') ?? '');
        offset = m ? Number(m[2]) + 1 : end;
        if (offset !== end) {
          throw new RegistryError('PROTOCOL', `upload of ${desc.digest}: sent up to ${end}, the registry has ${offset}`, { registry: r.registry, repository: r.repository, temporary: true });
        }
        budget.progressed();
        continue;
      }
      if (res.status !== 416) await session.fail(res, `chunk ${start}-${end - 1} of blob ${desc.digest} was refused`, r.repository);
      discard(res.body);
    } catch (e) {
      const wait = networkish(e) ? budget.next() : undefined;
      if (wait === undefined) throw e;
      await sleep(wait, signal);
    }
    // Interrupted or out of step: ask the registry where the upload stands and go on from there.
    const status = await uploadStatus(session, r, loc, scopes, signal);
    if (!status || status.offset > desc.size) {
      throw new RegistryError('UNAVAILABLE', `upload of ${desc.digest} was interrupted and the registry cannot resume it`, { registry: r.registry, repository: r.repository, temporary: true });
    }
    loc = status.location;
    offset = status.offset;
    report(offset, true);
  }
  const res = await session.request({ method: 'PUT', url: withDigest(loc, desc.digest), repository: r.repository, scopes, ...(signal ? { signal } : {}), retry: false });
  await finish(session, r, desc, res, 'upload');
}
