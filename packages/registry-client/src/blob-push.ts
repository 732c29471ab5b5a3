import { createReadStream } from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import type { BlobStore, Descriptor, Layer } from '@hoist/oci';
import { repoScope } from './auth.js';
import { repoName, type ClientContext, type RepoRef } from './context.js';
import { RegistryError, isRegistryError } from './errors.js';
import { discard, header } from './http.js';
import { BlobUpload, uploadSession, type UploadSession } from './blob-upload.js';
import { blobReporter } from './progress.js';
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

export interface BlobPushOptions {
  /** The local store: a blob there is uploaded from it. */
  blobs: BlobStore;
  /** Repositories of the same registry to try mounting the blob from. */
  mountFrom: string[];
  /** Where the blob is when the store lacks it (a base image's registry, an imported cache). */
  layer?: Layer;
  signal?: AbortSignal;
}

/**
 * Make `desc` present in the repository: skip it if there (HEAD), mount it from another
 * repository of the same registry if one of `mountFrom` has it, else upload it — from the store
 * in one PUT, or in chunks (PATCH with Content-Range) when larger than the chunk size, resuming
 * an interrupted chunked upload from the offset the registry reports; a blob the store lacks is
 * streamed from its `layer`, wherever that is.
 */
export async function pushBlob(ctx: ClientContext, r: RepoRef, desc: Descriptor, o: BlobPushOptions): Promise<BlobPushResult> {
  const key = `push\0${repoName(r)}\0${desc.digest}`;
  let p = ctx.inflight.get(key) as Promise<BlobPushResult> | undefined;
  if (!p) {
    p = ctx.limit(() => pushBlobOnce(ctx, r, desc, o));
    ctx.inflight.set(key, p as Promise<never>);
    void p.finally(() => ctx.inflight.delete(key)).catch(() => undefined);
  }
  return p;
}

async function pushBlobOnce(ctx: ClientContext, r: RepoRef, desc: Descriptor, o: BlobPushOptions): Promise<BlobPushResult> {
  const { blobs, mountFrom, signal } = o;
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

  // Not in the local store (a lazily resolved base layer, an imported cache's): copy it from its layer.
  const remote = st ? undefined : o.layer;
  if (!st && !remote) {
    throw new RegistryError('BLOB_UNKNOWN', `blob ${desc.digest} is neither in the local store nor in ${r.repository}`, {
      registry: r.registry,
      repository: r.repository,
      hint: 'Pull the base image into the local store (or push from a store that has all layers), then push again',
    });
  }
  const report = blobReporter(ctx.emit, { ...base, action: 'push' });
  const transfer = new BlobUpload({ ctx, session, repo: r, desc, scopes: push, report, signal });
  // attempts only: an upload may take long, and a TIMEOUT already used up its request's deadline
  const budget = new RetryBudget(ctx.retry, { deadline: false });
  for (;;) {
    try {
      upload ??= await transfer.start();
      const chunk = Math.max(ctx.chunkSize, upload.minChunk);
      if (remote) await transfer.monolithic(upload, () => openedLater(() => remote.open(signal ? { signal } : {})));
      else if (desc.size <= chunk) await transfer.monolithic(upload, () => createReadStream(blobs.path(desc.digest), { highWaterMark: READ_CHUNK }));
      else await transfer.chunked(upload, blobs.path(desc.digest), chunk);
      return 'uploaded';
    } catch (e) {
      upload = undefined;
      const wait = isRegistryError(e) && e.temporary && e.code !== 'TIMEOUT' ? budget.next() : undefined;
      if (wait === undefined) throw e;
      await sleep(wait, signal);
      // The final PUT may have landed even though its answer was lost.
      if (await blobExists(session, r, desc, push, signal)) return 'uploaded';
      report(0, true);
    }
  }
}

/** A stream at once, filled from one opened asynchronously (each call opens anew: a retried request re-reads). */
function openedLater(open: () => Promise<Readable>): Readable {
  const out = new PassThrough();
  open().then(
    (s) => {
      s.on('error', (e) => out.destroy(e));
      s.pipe(out);
    },
    (e: unknown) => out.destroy(e as Error),
  );
  return out;
}
