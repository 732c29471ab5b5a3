import type { Credentials } from './credentials.js';

/** One `WWW-Authenticate` challenge: `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`. */
export interface Challenge {
  scheme: string; // lower case: 'bearer' | 'basic' | ...
  params: Record<string, string>;
}

/**
 * Parse a `WWW-Authenticate` header value (RFC 7235): several challenges, each a scheme then
 * comma-separated `key=value` / `key="quoted \" value"` parameters.
 */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (!header) return [];
  const values = Array.isArray(header) ? header : [header];
  const out: Challenge[] = [];
  for (const value of values) {
    let i = 0;
    const s = value;
    let current: Challenge | undefined;
    const skipWs = (): void => {
      while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === ',')) i++;
    };
    while (i < s.length) {
      skipWs();
      const m = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+/.exec(s.slice(i));
      if (!m) break;
      const token = m[0];
      i += token.length;
      while (s[i] === ' ') i++;
      if (s[i] === '=') {
        // a parameter of the current challenge
        i++;
        while (s[i] === ' ') i++;
        let v = '';
        if (s[i] === '"') {
          i++;
          while (i < s.length && s[i] !== '"') {
            if (s[i] === '\\' && i + 1 < s.length) i++;
            v += s[i];
            i++;
          }
          i++;
        } else {
          const mv = /^[^,\s]*/.exec(s.slice(i))!;
          v = mv[0];
          i += v.length;
        }
        if (current) current.params[token.toLowerCase()] = v;
      } else {
        current = { scheme: token.toLowerCase(), params: {} };
        out.push(current);
      }
    }
  }
  return out;
}

/** The challenge we can answer, Bearer preferred over Basic. */
export function pickChallenge(cs: Challenge[]): Challenge | undefined {
  return cs.find((c) => c.scheme === 'bearer') ?? cs.find((c) => c.scheme === 'basic');
}

export function basicAuthHeader(c: Credentials): string | undefined {
  if (!('password' in c)) return undefined;
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}

/** `repository:NAME:ACTIONS` scope strings. */
export function repoScope(repository: string, actions: 'pull' | 'push' | 'pull,push' | 'pull,push,delete'): string {
  return `repository:${repository}:${actions}`;
}

/** Merge scopes on the same resource (`repository:a:pull` + `repository:a:push` -> `pull,push`). */
export function mergeScopes(scopes: string[]): string[] {
  const byResource = new Map<string, Set<string>>();
  for (const sc of scopes) {
    for (const one of sc.split(' ')) {
      if (!one) continue;
      const idx = one.lastIndexOf(':');
      if (idx < 0) continue;
      const res = one.slice(0, idx);
      const set = byResource.get(res) ?? new Set<string>();
      for (const a of one.slice(idx + 1).split(',')) if (a) set.add(a);
      byResource.set(res, set);
    }
  }
  return [...byResource.entries()].map(([r, a]) => `${r}:${[...a].sort().join(',')}`).sort();
}

/** A bearer token and when to stop using it. */
export interface Token {
  token: string;
  expiresAt: number;
}

/** Parse a token endpoint answer: `{token|access_token, expires_in?, issued_at?}`. */
export function parseTokenResponse(body: Buffer, now = Date.now()): Token | undefined {
  let v: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
  try {
    v = JSON.parse(body.toString()) as typeof v;
  } catch {
    return undefined;
  }
  const token = typeof v.token === 'string' && v.token ? v.token : typeof v.access_token === 'string' ? v.access_token : undefined;
  if (!token) return undefined;
  // The spec's minimum lifetime is 60 s; a token without `expires_in` lives that long.
  const expiresIn = typeof v.expires_in === 'number' && v.expires_in > 0 ? v.expires_in : 60;
  let issued = now;
  if (typeof v.issued_at === 'string') {
    const t = Date.parse(v.issued_at);
    // Clocks differ: trust issued_at only when it is close to ours.
    if (!Number.isNaN(t) && Math.abs(t - now) < 5 * 60_000) issued = Math.min(t, now);
  }
  return { token, expiresAt: issued + expiresIn * 1000 };
}
