import { createHash } from 'node:crypto';
import { withFileLock, type BlobStore, type Descriptor } from '@hoist/oci';
import { repoScope } from './auth.js';
import { repoName, type ClientContext, type RepoRef } from './context.js';
import { RegistryError } from './errors.js';
import { isRetriableNetworkError, readBody } from './http.js';
import { BlobDownload, type BlobTap } from './blob-download.js';
import { blobReporter } from './progress.js';
import { RetryBudget, sleep } from './retry.js';

export type { BlobTap, ContentCheck } from './blob-download.js';

/**
 * Download one blob into `blobs`, verified: size-capped while streaming, hashed, and only
 * renamed into the store when digest and size match. An interrupted download resumes with a
 * Range request; a partial file left by a killed process is resumed by the next run.
 * Concurrent fetches of the same blob (in this client or another process) wait for one another.
 */
export async function fetchBlobInto(ctx: ClientContext, r: RepoRef, desc: Descriptor, blobs: BlobStore, signal?: AbortSignal, tap?: BlobTap): Promise<'exists' | 'pulled'> {
  const report = blobReporter(ctx.emit, { kind: 'blob', action: 'exists', ref: repoName(r), digest: desc.digest, total: desc.size });
  if (await blobs.has(desc.digest)) {
    report(desc.size);
    return 'exists';
  }
  const map = ctx.inflight;
  const key = `${blobs.root}\0${desc.digest}`;
  let p = map.get(key);
  if (!p) {
    p = ctx.limit(async () => {
      const { lock } = await blobs.downloadPaths(desc.digest);
      await withFileLock(lock, async () => {
        if (await blobs.has(desc.digest)) return;
        await new BlobDownload(ctx, r, desc, { signal, tap }).into(blobs);
      }, 24 * 3600_000);
    });
    map.set(key, p);
    void p.finally(() => map.delete(key)).catch(() => undefined);
  }
  await p;
  return 'pulled';
}

/** A small blob (an image config) into memory, verified and capped. */
export async function fetchBlobBytes(ctx: ClientContext, r: RepoRef, desc: Descriptor, max: number, signal?: AbortSignal): Promise<Buffer> {
  if (desc.size > max) throw new RegistryError('TOO_LARGE', `blob ${desc.digest} is ${desc.size} bytes, over the ${max}-byte limit`, { registry: r.registry, repository: r.repository });
  const session = ctx.session(r.registry);
  const budget = new RetryBudget(ctx.retry);
  for (;;) {
    const res = await session.request({ method: 'GET', url: `/v2/${r.repository}/blobs/${desc.digest}`, repository: r.repository, scopes: [repoScope(r.repository, 'pull')], ...(signal ? { signal } : {}) });
    if (res.status !== 200) await session.fail(res, `cannot download blob ${desc.digest}`, r.repository);
    let data: Buffer;
    try {
      data = await readBody(res.body, desc.size);
    } catch (e) {
      if ((e as { code?: string }).code === 'TOO_LARGE') throw new RegistryError('SIZE_MISMATCH', `blob ${desc.digest} is larger than its descriptor size ${desc.size}`, { registry: r.registry, repository: r.repository });
      const wait = isRetriableNetworkError(e) ? budget.next() : undefined;
      if (wait !== undefined) {
        await sleep(wait, signal);
        continue;
      }
      throw new RegistryError('NETWORK', `download of blob ${desc.digest} failed: ${(e as Error).message}`, { registry: r.registry, repository: r.repository, temporary: true, cause: e });
    }
    if (data.length !== desc.size) throw new RegistryError('SIZE_MISMATCH', `blob ${desc.digest}: got ${data.length} bytes, descriptor says ${desc.size}`, { registry: r.registry, repository: r.repository });
    const got = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    if (got !== desc.digest) throw new RegistryError('DIGEST_MISMATCH', `blob ${desc.digest} downloaded from the registry hashes to ${got}`, { registry: r.registry, repository: r.repository });
    return data;
  }
}
