import { MAX_JSON_BYTES, type Reference } from '@hoist/oci';
import { repoScope } from './auth.js';
import type { ClientContext } from './context.js';
import { RegistryError } from './errors.js';
import { discard, readBody } from './http.js';

/** What a DELETE came to: gone now, or already absent. */
export type DeleteResult = 'deleted' | 'absent';

/**
 * DELETE /v2/<name>/manifests/<digest> or /blobs/<digest>. A registry that does not allow
 * deleting answers 405 (distribution: `UNSUPPORTED`): that is an UNSUPPORTED error whose hint
 * names the registry setting.
 */
export async function deleteContent(ctx: ClientContext, r: Reference, kind: 'manifests' | 'blobs', digest: string, signal?: AbortSignal): Promise<DeleteResult> {
  const session = ctx.session(r.registry);
  const res = await session.request({
    method: 'DELETE',
    url: `/v2/${r.repository}/${kind}/${digest}`,
    repository: r.repository,
    scopes: [repoScope(r.repository, 'pull,push,delete')],
    ...(signal ? { signal } : {}),
  });
  if (res.status === 202 || res.status === 200 || res.status === 204) {
    discard(res.body);
    return 'deleted';
  }
  if (res.status === 404) {
    discard(res.body);
    return 'absent';
  }
  if (res.status === 405) {
    discard(res.body);
    throw new RegistryError('UNSUPPORTED', `the registry refuses to delete ${kind === 'blobs' ? 'blob' : 'manifest'} ${digest}`, {
      registry: r.registry,
      repository: r.repository,
      status: 405,
      hint: `Deleting is disabled on ${r.registry}: enable it (distribution/docker-registry: storage.delete.enabled: true, or REGISTRY_STORAGE_DELETE_ENABLED=true; other registries: their retention or delete setting), or delete through the registry's own tools`,
    });
  }
  return session.fail(res, `cannot delete ${kind === 'blobs' ? 'blob' : 'manifest'} ${digest}`, r.repository);
}

/** Every tag of a repository (GET /v2/<name>/tags/list, following `Link` pages). */
export async function listTags(ctx: ClientContext, r: Reference, signal?: AbortSignal): Promise<string[]> {
  const session = ctx.session(r.registry);
  const tags: string[] = [];
  let url: string | undefined = `/v2/${r.repository}/tags/list?n=1000`;
  for (let page = 0; url && page < 1000; page++) {
    const res = await session.request({ method: 'GET', url, repository: r.repository, scopes: [repoScope(r.repository, 'pull')], ...(signal ? { signal } : {}) });
    if (res.status === 404) {
      discard(res.body);
      return tags;
    }
    if (res.status !== 200) await session.fail(res, 'cannot list tags', r.repository);
    const body = JSON.parse((await readBody(res.body, MAX_JSON_BYTES)).toString('utf8')) as { tags?: unknown };
    if (Array.isArray(body.tags)) tags.push(...body.tags.filter((t): t is string => typeof t === 'string'));
    url = nextPage(res.headers.link);
  }
  return tags;
}

/** The target of `Link: </v2/...?last=x>; rel="next"`, if any. */
function nextPage(link: string | string[] | undefined): string | undefined {
  const v = Array.isArray(link) ? link[0] : link;
  const m = v ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(v) : null;
  return m?.[1];
}
