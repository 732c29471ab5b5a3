import { basicAuthHeader, parseTokenResponse, type Challenge, type Token } from './auth.js';
import type { Credentials } from './credentials.js';
import { RegistryError } from './errors.js';
import { discard, header, isAbortError, isCertificateError, isNoResponse, isRetriableNetworkError, readBody, send, type AgentPool, type HttpResponse } from './http.js';
import { RETRIABLE_STATUS, RetryBudget, parseRetryAfter, sleep, timeLeft, type RetryPolicy } from './retry.js';

/** A token and when we got it (to refresh it before it runs out). */
export type ObtainedToken = Token & { obtainedAt: number };

export interface TokenDeps {
  registry: string;
  pool: AgentPool;
  userAgent: string;
  retry: RetryPolicy;
  /** How long to wait for the token service's answer (a token request is small). */
  headerTimeoutMs: number;
  fail: (res: HttpResponse, what: string) => Promise<never>;
}


async function pause(d: TokenDeps, waitMs: number, signal?: AbortSignal): Promise<void> {
  try {
    await sleep(waitMs, signal);
  } catch (e) {
    throw new RegistryError('ABORTED', 'operation aborted', { registry: d.registry, cause: e });
  }
}

/**
 * Ask a Bearer challenge's realm for a token covering `scopes`: GET with Basic credentials (or
 * anonymous), or the OAuth2 refresh-token POST for an identity token. Retries 429/5xx and
 * network errors; a 401/403 means the credentials were refused.
 */
export async function requestToken(d: TokenDeps, c: Challenge, scopes: string[], creds: Credentials | undefined, signal?: AbortSignal): Promise<ObtainedToken> {
  const obtainedAt = Date.now();
  const realm = c.params.realm;
  if (!realm) throw new RegistryError('PROTOCOL', 'Bearer challenge without a realm', { registry: d.registry });
  const url = new URL(realm);
  const headers: Record<string, string> = { 'user-agent': d.userAgent };
  let method = 'GET';
  let body: Buffer | undefined;
  if (creds && 'identityToken' in creds) {
    method = 'POST';
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'hoist' });
    if (c.params.service) form.set('service', c.params.service);
    if (scopes.length) form.set('scope', scopes.join(' '));
    body = Buffer.from(form.toString());
    headers['content-type'] = 'application/x-www-form-urlencoded';
  } else {
    if (c.params.service) url.searchParams.set('service', c.params.service);
    for (const s of scopes) url.searchParams.append('scope', s);
    if (creds) {
      url.searchParams.set('account', creds.username);
      headers.authorization = basicAuthHeader(creds)!;
    }
  }
  const budget = new RetryBudget(d.retry);
  for (;;) {
    let res: HttpResponse;
    try {
      res = await send(d.pool, { method, url, headers, ...(body ? { body } : {}), ...(signal ? { signal } : {}) }, timeLeft(budget.deadline, d.headerTimeoutMs));
    } catch (e) {
      if (isAbortError(e)) throw new RegistryError('ABORTED', 'operation aborted', { registry: d.registry, cause: e });
      if (isCertificateError(e)) throw new RegistryError('TLS', `TLS certificate of the token service ${url.host} not trusted`, { registry: d.registry, cause: e });
      const wait = isRetriableNetworkError(e) ? budget.next() : undefined;
      if (wait !== undefined) {
        await pause(d, wait, signal);
        continue;
      }
      throw new RegistryError(isNoResponse(e) ? 'TIMEOUT' : 'NETWORK', `cannot reach the token service ${url.origin}: ${(e as Error).message}`, { registry: d.registry, temporary: true, cause: e });
    }
    const wait = RETRIABLE_STATUS.has(res.status) ? budget.next(parseRetryAfter(header(res, 'retry-after'))) : undefined;
    if (wait !== undefined) {
      discard(res.body);
      await pause(d, wait, signal);
      continue;
    }
    if (res.status === 401 || res.status === 403) {
      discard(res.body);
      throw new RegistryError('UNAUTHORIZED', creds ? `the token service ${url.origin} rejected the credentials${'username' in creds && creds.username ? ` of ${creds.username}` : ''}` : `the token service ${url.origin} requires credentials`, {
        registry: d.registry,
        status: res.status,
        hint: creds ? `Check the user name and password, then \`hoist login ${d.registry}\` again` : `Log in with \`hoist login ${d.registry}\``,
      });
    }
    if (res.status !== 200) return d.fail(res, `token request to ${url.origin} failed`);
    let raw: Buffer;
    try {
      raw = await readBody(res.body, 1024 * 1024);
    } catch (e) {
      throw new RegistryError('TOO_LARGE', `token response from ${url.origin} is too large`, { registry: d.registry, cause: e });
    }
    const t = parseTokenResponse(raw);
    if (!t) throw new RegistryError('PROTOCOL', `token response from ${url.origin} has no token`, { registry: d.registry });
    return { ...t, obtainedAt };
  }
}
