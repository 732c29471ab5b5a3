import { createPrivateKey, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { tempDir } from './temp.js';

/** stdin is not a pipe here: a tool that exits early cannot fail us with EPIPE. */
const execFileP = promisify(execFile);

export interface TokenRequest {
  method: string;
  account: string | undefined;
  scopes: string[];
  grantType?: string;
  status: number;
}

export interface TokenIssuerOptions {
  /** Accounts and their passwords. */
  users?: Record<string, string>;
  service?: string;
  issuer?: string;
  /** Token lifetime in seconds (default 300). */
  expiresIn?: number;
  /**
   * Actions granted to `account` (undefined: anonymous) on a repository. Default: an
   * authenticated user gets what it asks for; anonymous gets `pull` on `public/*` only.
   */
  access?: (account: string | undefined, repository: string, actions: string[]) => string[];
}

export interface RunningTokenIssuer {
  realm: string;
  service: string;
  issuer: string;
  /** Certificate of the signing key (the registry's `rootcertbundle`). */
  certFile: string;
  /** YAML for `startRegistry({ extraConfig })`: `auth: token: …`. */
  registryConfig: string;
  requests: TokenRequest[];
  stop(): Promise<void>;
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

function parseScope(s: string): { type: string; name: string; actions: string[] } | undefined {
  // repository:name:actions — the name may contain ':' only for a port, which repository names cannot
  const first = s.indexOf(':');
  const last = s.lastIndexOf(':');
  if (first < 0 || last === first) return undefined;
  return { type: s.slice(0, first), name: s.slice(first + 1, last), actions: s.slice(last + 1).split(',').filter(Boolean) };
}

/**
 * A Docker token service (the `WWW-Authenticate: Bearer` realm) for tests: GET with Basic auth
 * and the OAuth2 POST (password and refresh_token grants). Signs JWTs (RS256, key and cert
 * made at start) that docker-registry's `auth: token` accepts through `x5c` + `rootcertbundle`.
 */
export async function startTokenIssuer(opts: TokenIssuerOptions = {}): Promise<RunningTokenIssuer> {
  const dir = await tempDir('token');
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyFile = path.join(dir, 'key.pem');
  await fsp.writeFile(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const certFile = path.join(dir, 'cert.pem');
  await execFileP('openssl', ['req', '-x509', '-new', '-key', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=hoist test token issuer']);
  const certDer = new X509Certificate(await fsp.readFile(certFile)).raw;
  const key: KeyObject = createPrivateKey(await fsp.readFile(keyFile));
  const service = opts.service ?? 'hoist-test-registry';
  const issuer = opts.issuer ?? 'hoist-test-issuer';
  const users = opts.users ?? {};
  const access = opts.access ?? ((account, repo, actions) => (account ? actions : repo.startsWith('public/') ? actions.filter((a) => a === 'pull') : []));
  const refreshTokens = new Map<string, string>();
  const requests: TokenRequest[] = [];

  const issue = (account: string | undefined, scopes: string[]): { token: string; expires_in: number; issued_at: string } => {
    const now = Math.floor(Date.now() / 1000);
    const expiresIn = opts.expiresIn ?? 300;
    const grants = scopes
      .map(parseScope)
      .filter((s): s is NonNullable<typeof s> => !!s && s.type === 'repository')
      .map((s) => ({ type: 'repository', name: s.name, actions: access(account, s.name, s.actions) }));
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] };
    const claims = { iss: issuer, sub: account ?? '', aud: service, exp: now + expiresIn, nbf: now - 1, iat: now, jti: randomBytes(12).toString('hex'), access: grants };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = sign('sha256', Buffer.from(input), key);
    return { token: `${input}.${b64url(sig)}`, expires_in: expiresIn, issued_at: new Date(now * 1000).toISOString() };
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const reply = (status: number, body: unknown, rec: Omit<TokenRequest, 'status' | 'method'>): void => {
        requests.push({ method: req.method ?? '', status, ...rec });
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.method === 'POST') {
        const form = new URLSearchParams(Buffer.concat(chunks).toString());
        const scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
        const grant = form.get('grant_type') ?? '';
        let account: string | undefined;
        if (grant === 'password') {
          const u = form.get('username') ?? '';
          if (users[u] === undefined || users[u] !== form.get('password')) return reply(401, { errors: [{ code: 'UNAUTHORIZED' }] }, { account: u, scopes, grantType: grant });
          account = u;
        } else if (grant === 'refresh_token') {
          account = refreshTokens.get(form.get('refresh_token') ?? '');
          if (!account) return reply(401, { errors: [{ code: 'UNAUTHORIZED' }] }, { account, scopes, grantType: grant });
        } else return reply(400, { error: 'unsupported_grant_type' }, { account, scopes, grantType: grant });
        const t = issue(account, scopes);
        const refresh = randomBytes(16).toString('hex');
        refreshTokens.set(refresh, account);
        return reply(200, { access_token: t.token, expires_in: t.expires_in, issued_at: t.issued_at, refresh_token: refresh }, { account, scopes, grantType: grant });
      }
      const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
      let account: string | undefined;
      const auth = req.headers.authorization;
      if (auth?.startsWith('Basic ')) {
        const s = Buffer.from(auth.slice(6), 'base64').toString();
        const i = s.indexOf(':');
        const u = s.slice(0, i);
        if (i < 0 || users[u] === undefined || users[u] !== s.slice(i + 1)) return reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }, { account: u, scopes });
        account = u;
      }
      const t = issue(account, scopes);
      const body: Record<string, unknown> = { token: t.token, access_token: t.token, expires_in: t.expires_in, issued_at: t.issued_at };
      if (account && url.searchParams.get('offline_token') === 'true') {
        const refresh = randomBytes(16).toString('hex');
        refreshTokens.set(refresh, account);
        body.refresh_token = refresh;
      }
      return reply(200, body, { account, scopes });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const realm = `http://127.0.0.1:${port}/token`;
  return {
    realm,
    service,
    issuer,
    certFile,
    requests,
    registryConfig: ['auth:', '  token:', `    realm: ${realm}`, `    service: ${service}`, `    issuer: ${issuer}`, `    rootcertbundle: ${certFile}`].join('\n'),
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
}
