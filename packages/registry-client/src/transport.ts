import { DOCKER_HUB, DOCKER_HUB_API, isLoopbackRegistry } from '@hoist/oci';
import { basicAuthHeader, mergeScopes, parseChallenges, pickChallenge, type Challenge } from './auth.js';
import { requestToken, type ObtainedToken } from './tokens.js';
import type { CredentialProvider, Credentials } from './credentials.js';
import { RegistryError, codeFromOci, parseOciErrors } from './errors.js';
import { discard, header, isAbortError, isCertificateError, isNoResponse, isRetriableNetworkError, readBody, send, type AgentPool, type Body, type HttpResponse } from './http.js';
import { speaksTls } from './tls-sniff.js';
import { RETRIABLE_STATUS, RetryBudget, parseRetryAfter, sleep, timeLeft, type RetryPolicy } from './retry.js';

export interface SessionOptions {
  registry: string;
  pool: AgentPool;
  credentials: CredentialProvider | undefined;
  /** Plain HTTP allowed (loopback or listed in `insecureRegistries`): https is tried first. */
  plainHttp: boolean;
  userAgent: string;
  retry: RetryPolicy;
  /** Idle timeout of requests that carry a body (a registry may verify a big upload for long). */
  timeoutMs: number;
  /** How long a request without a body waits for the response head, or for more of its body. */
  headerTimeoutMs: number;
}

export interface SessionRequest {
  method: string;
  /** `/v2/...` path, or an absolute/relative URL given by the registry (upload locations). */
  url: string | URL;
  repository?: string;
  /** Token scopes the request needs (`repository:NAME:pull`). */
  scopes: string[];
  headers?: Record<string, string>;
  body?: Body;
  signal?: AbortSignal;
  /** Retry network errors, 429 and 5xx here (default true). Off for uploads, which resume instead. */
  retry?: boolean;
}

const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);

/**
 * Everything the client knows about one registry: its base URL (scheme found by probing
 * `/v2/`), its auth challenge, and the bearer tokens it issued, cached by scope set.
 */
export class RegistrySession {
  readonly registry: string;
  readonly apiHost: string;
  private base: Promise<URL> | undefined;
  private challenge: Challenge | undefined;
  private readonly tokens = new Map<string, Promise<ObtainedToken>>();
  /** Token requests made (for tests and diagnostics). */
  tokenFetches = 0;

  constructor(private readonly o: SessionOptions) {
    this.registry = o.registry;
    this.apiHost = o.registry === DOCKER_HUB ? DOCKER_HUB_API : o.registry;
  }

  static plainHttpAllowed(registry: string, insecure: string[]): boolean {
    return isLoopbackRegistry(registry) || insecure.includes(registry);
  }

  /** The registry's base URL, probing `/v2/` once (https first; http if allowed and TLS is not spoken). */
  baseUrl(signal?: AbortSignal): Promise<URL> {
    if (!this.base) {
      this.base = this.probe(signal);
      this.base.catch(() => (this.base = undefined));
    }
    return this.base;
  }

  private async probe(signal?: AbortSignal): Promise<URL> {
    const budget = new RetryBudget(this.o.retry);
    const run = async (): Promise<URL> => {
      let lastErr: unknown;
      for (const scheme of await this.schemes(budget, signal)) {
        const base = new URL(`${scheme}//${this.apiHost}/`);
        try {
          const req = { method: 'GET', url: new URL('/v2/', base), headers: { 'user-agent': this.o.userAgent }, ...(signal ? { signal } : {}) };
          const res = await send(this.o.pool, req, timeLeft(budget.deadline, this.o.headerTimeoutMs));
          if (res.status === 401) this.challenge = pickChallenge(parseChallenges(res.headers['www-authenticate']));
          discard(res.body);
          return base;
        } catch (e) {
          lastErr = e;
          if (isAbortError(e) || isCertificateError(e)) throw e;
        }
      }
      throw lastErr;
    };
    for (;;) {
      try {
        return await run();
      } catch (e) {
        if (isAbortError(e)) throw this.abortError(e);
        if (isCertificateError(e)) throw new RegistryError('TLS', `TLS certificate of ${this.apiHost} not trusted: ${(e as Error).message}`, { registry: this.registry, cause: e });
        const attempts = budget.attempt;
        const wait = isRetriableNetworkError(e) ? budget.next() : undefined;
        if (wait === undefined) throw this.networkError(e, `cannot reach https://${this.apiHost}/v2/`, { attempts, deadline: budget.deadline });
        await sleep(wait, signal).catch((err: unknown) => {
          throw this.abortError(err);
        });
      }
    }
  }

  /** https; then http where allowed, and http only where the registry does not speak TLS at all (see speaksTls). */
  private async schemes(budget: RetryBudget, signal: AbortSignal | undefined): Promise<string[]> {
    if (!this.o.plainHttp) return ['https:'];
    const tlsSpoken = await speaksTls(this.apiHost, { timeoutMs: timeLeft(budget.deadline, this.o.headerTimeoutMs), ...(signal ? { signal } : {}) });
    return tlsSpoken ? ['https:', 'http:'] : ['http:'];
  }

  /** NETWORK, or TIMEOUT when the registry accepted connections but never answered. */
  private networkError(e: unknown, what: string, o: { attempts: number; deadline: number; repository?: string }): RegistryError {
    const init = { registry: this.registry, ...(o.repository ? { repository: o.repository } : {}), temporary: true, cause: e };
    if (isNoResponse(e)) {
      const took = Math.round((this.o.retry.totalMs - Math.max(0, o.deadline - Date.now())) / 100) / 10;
      const tries = `${o.attempts} attempt${o.attempts === 1 ? '' : 's'}`;
      const text = `no response from ${this.apiHost} within ${this.o.headerTimeoutMs} ms (gave up after ${tries} in ${took} s; the deadline is ${this.o.retry.totalMs / 1000} s)`;
      return new RegistryError('TIMEOUT', `${what}: ${text}`, init);
    }
    return new RegistryError('NETWORK', `${what}: ${(e as Error).message}`, { ...init, temporary: isRetriableNetworkError(e) });
  }

  /** Resolve a registry-given Location (relative or absolute) against the base URL. */
  async resolve(url: string | URL, signal?: AbortSignal): Promise<URL> {
    return new URL(url, await this.baseUrl(signal));
  }

  private abortError(e: unknown): RegistryError {
    return new RegistryError('ABORTED', 'operation aborted', { registry: this.registry, cause: e });
  }

  /**
   * One request with auth (answering 401 challenges once), redirects (credentials are not
   * sent to other hosts) and, unless `retry: false`, retries of network errors, 429 and 5xx
   * with backoff that honours Retry-After. Returns any other response for the caller to judge.
   */
  async request(r: SessionRequest): Promise<HttpResponse> {
    const base = await this.baseUrl(r.signal);
    let url = new URL(r.url, base);
    let scopes = r.scopes;
    let authRetried = false;
    let redirects = 0;
    let method = r.method;
    let body = r.body;
    const budget = new RetryBudget(this.o.retry);
    for (;;) {
      const sameOrigin = url.origin === base.origin;
      const headers: Record<string, string> = { 'user-agent': this.o.userAgent, ...r.headers };
      if (sameOrigin) {
        const auth = await this.authHeader(scopes, r.repository, r.signal);
        if (auth) headers.authorization = auth;
      }
      let res: HttpResponse;
      try {
        const idleMs = body === undefined ? timeLeft(budget.deadline, this.o.headerTimeoutMs) : this.o.timeoutMs;
        res = await send(this.o.pool, { method, url, headers, ...(body !== undefined ? { body } : {}), ...(r.signal ? { signal: r.signal } : {}) }, idleMs);
      } catch (e) {
        if (isAbortError(e)) throw this.abortError(e);
        if (isCertificateError(e)) throw new RegistryError('TLS', `TLS certificate of ${url.host} not trusted: ${(e as Error).message}`, { registry: this.registry, cause: e });
        const attempts = budget.attempt;
        const wait = r.retry !== false && isRetriableNetworkError(e) ? budget.next() : undefined;
        if (wait !== undefined) {
          await this.pause(wait, r.signal);
          continue;
        }
        throw this.networkError(e, `${method} ${url.pathname} failed`, { attempts, deadline: budget.deadline, ...(r.repository ? { repository: r.repository } : {}) });
      }
      if (res.status === 401 && sameOrigin && !authRetried) {
        const c = pickChallenge(parseChallenges(res.headers['www-authenticate']));
        if (c) {
          authRetried = true;
          this.onChallenge(c, scopes);
          if (c.params.scope) scopes = mergeScopes([...scopes, c.params.scope]);
          discard(res.body);
          continue;
        }
      }
      if (REDIRECT_STATUS.has(res.status) && (method === 'GET' || method === 'HEAD') && header(res, 'location')) {
        discard(res.body);
        if (++redirects > 10) throw new RegistryError('PROTOCOL', `too many redirects from ${r.url}`, { registry: this.registry, repository: r.repository });
        url = new URL(header(res, 'location')!, url);
        if (res.status === 303) {
          method = 'GET';
          body = undefined;
        }
        continue;
      }
      if (RETRIABLE_STATUS.has(res.status) && r.retry !== false) {
        const after = parseRetryAfter(header(res, 'retry-after'));
        if (after !== undefined && after > this.o.retry.maxRetryAfterMs) return res;
        const wait = budget.next(after);
        if (wait === undefined) return res;
        discard(res.body);
        await this.pause(wait, r.signal);
        continue;
      }
      return res;
    }
  }

  private async pause(waitMs: number, signal?: AbortSignal): Promise<void> {
    try {
      await sleep(waitMs, signal);
    } catch (e) {
      throw this.abortError(e);
    }
  }

  /** Turn an unexpected response into a RegistryError (reads the OCI error body). */
  async fail(res: HttpResponse, what: string, repository?: string): Promise<never> {
    let body: Buffer = Buffer.alloc(0);
    try {
      body = await readBody(res.body, 64 * 1024);
    } catch {
      /* the status says enough */
    }
    const oci = parseOciErrors(body);
    let code = codeFromOci(res.status, oci);
    let hint: string | undefined;
    if (code === 'UNAUTHORIZED' || code === 'DENIED') {
      const creds = await this.o.credentials?.get(this.registry, repository).catch(() => undefined);
      if (!creds) hint = `${repository ? `The repository ${repository} does not exist or ` : 'It '}may require \`hoist login ${this.registry}\``;
      else hint = `Check that the repository exists and that the credentials for ${this.registry} may access it (\`hoist login ${this.registry}\` to change them)`;
    }
    if (code === 'UNKNOWN' && res.status === 404) code = 'NAME_UNKNOWN';
    const after = parseRetryAfter(header(res, 'retry-after'));
    if (code === 'TOO_MANY_REQUESTS' && after !== undefined) hint = `The registry asks to wait ${Math.ceil(after / 1000)} s before retrying`;
    throw new RegistryError(code, what, {
      registry: this.registry,
      ...(repository ? { repository } : {}),
      status: res.status,
      ociErrors: oci,
      temporary: RETRIABLE_STATUS.has(res.status),
      ...(hint ? { hint } : {}),
    });
  }

  private onChallenge(c: Challenge, scopes: string[]): void {
    const prev = this.challenge;
    this.challenge = c;
    // The token we sent was refused (expired or too narrow): forget it.
    this.tokens.delete(mergeScopes(scopes).join(' '));
    if (prev?.params.realm !== c.params.realm) this.tokens.clear();
  }

  private async authHeader(scopes: string[], repository: string | undefined, signal?: AbortSignal): Promise<string | undefined> {
    const c = this.challenge;
    if (!c) return undefined;
    if (c.scheme === 'basic') {
      const creds = await this.credentialsFor(repository);
      return creds ? basicAuthHeader(creds) : undefined;
    }
    if (c.scheme === 'bearer') return `Bearer ${await this.token(scopes, repository, signal)}`;
    return undefined;
  }

  private async credentialsFor(repository: string | undefined): Promise<Credentials | undefined> {
    return this.o.credentials?.get(this.registry, repository);
  }

  /**
   * A bearer token for these scopes: cached until shortly before it expires (10 s, or a quarter
   * of its lifetime if shorter); concurrent callers share one fetch.
   */
  private async token(scopes: string[], repository: string | undefined, signal?: AbortSignal): Promise<string> {
    const key = mergeScopes(scopes).join(' ');
    const cached = this.tokens.get(key);
    if (cached) {
      const t = await cached.catch(() => undefined);
      if (t && t.expiresAt - Math.min(10_000, (t.expiresAt - t.obtainedAt) / 4) > Date.now()) return t.token;
      if (this.tokens.get(key) === cached) this.tokens.delete(key);
    }
    let p = this.tokens.get(key);
    if (!p) {
      const c = this.challenge!;
      const fresh = (async () => this.fetchToken(c, key ? key.split(' ') : [], await this.credentialsFor(repository), signal))();
      p = fresh;
      this.tokens.set(key, fresh);
      fresh.catch(() => this.tokens.get(key) === fresh && this.tokens.delete(key));
    }
    return (await p).token;
  }

  /** Ask the challenge's realm for a token (GET with Basic auth, or the OAuth2 refresh-token POST). */
  fetchToken(c: Challenge, scopes: string[], creds: Credentials | undefined, signal?: AbortSignal): Promise<ObtainedToken> {
    this.tokenFetches++;
    return requestToken({ ...this.o, fail: (res, what) => this.fail(res, what) }, c, scopes, creds, signal);
  }

  /** Check credentials as `docker login` does: probe `/v2/`, then get a token or try Basic. */
  async verifyCredentials(creds: Credentials, signal?: AbortSignal): Promise<void> {
    const base = await this.baseUrl(signal);
    const c = this.challenge;
    if (!c) return; // the registry needs no auth
    if (c.scheme === 'bearer') {
      await this.fetchToken(c, [], creds, signal);
      return;
    }
    const auth = basicAuthHeader(creds);
    const res = await send(this.o.pool, { method: 'GET', url: new URL('/v2/', base), headers: { 'user-agent': this.o.userAgent, ...(auth ? { authorization: auth } : {}) }, ...(signal ? { signal } : {}) }, this.o.headerTimeoutMs);
    if (res.status === 200) {
      discard(res.body);
      return;
    }
    if (res.status === 401) {
      discard(res.body);
      throw new RegistryError('UNAUTHORIZED', `the registry rejected the credentials${'username' in creds ? ` of ${creds.username}` : ''}`, {
        registry: this.registry,
        status: 401,
        hint: 'Check the user name and password and try again',
      });
    }
    await this.fail(res, 'login check failed');
  }
}
