import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { certificatesBeyondRoots, contextTrusting } from '../src/extra-ca.js';
import { tmpDir } from './temp.js';

/** A self-signed certificate for 127.0.0.1 (its own CA) and its key, made with openssl. */
async function selfSigned(): Promise<{ cert: string; key: string }> {
  const dir = await tmpDir('hoist-extra-ca-');
  const args = ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'];
  execFileSync('openssl', [...args, '-keyout', 'k.pem', '-out', 'c.pem'], { cwd: dir, stdio: 'pipe' });
  return { cert: await fsp.readFile(path.join(dir, 'c.pem'), 'utf8'), key: await fsp.readFile(path.join(dir, 'k.pem'), 'utf8') };
}

/** The same certificate with its base64 wrapped at 76 columns and CRLF line ends, as another bundle may write it. */
function rewrapped(pem: string): string {
  const b64 = pem.replace(/-----[^-]*-----|\s+/g, '');
  return `-----BEGIN CERTIFICATE-----\r\n${b64.match(/.{1,76}/g)!.join('\r\n')}\r\n-----END CERTIFICATE-----\r\n`;
}

describe('certificatesBeyondRoots', () => {
  test('drops the certificates Node already trusts, however wrapped, and repeats; keeps new ones in order', async () => {
    const a = (await selfSigned()).cert;
    const b = (await selfSigned()).cert;
    const bundle = [rewrapped(tls.rootCertificates[0]!), a, tls.rootCertificates[5]!, b, rewrapped(a)].join('\n');
    const kept = certificatesBeyondRoots([bundle, b]);
    expect(kept).toEqual([a.trim(), b.trim()]);
  });

  test('text without any PEM block is passed on whole; an empty file adds nothing', () => {
    expect(certificatesBeyondRoots(['not a certificate\n'])).toEqual(['not a certificate\n']);
    expect(certificatesBeyondRoots(['', '  \n'])).toEqual([]);
  });
});

describe('contextTrusting', () => {
  let server: tls.Server;
  let port: number;
  let cert: string;
  beforeAll(async () => {
    const made = await selfSigned();
    cert = made.cert;
    server = tls.createServer({ cert: made.cert, key: made.key }, (s) => s.end('hi'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
  });

  /** The verification result of a handshake with the test server under `ctx` ('' when trusted). */
  function verify(ctx: tls.SecureContext): Promise<string> {
    return new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, secureContext: ctx, rejectUnauthorized: false }, () => {
        resolve(s.authorized ? '' : String(s.authorizationError));
        s.destroy();
      });
      s.on('error', reject);
    });
  }

  test('trusts the added certificate, and no other context comes to trust it', async () => {
    expect(await verify(contextTrusting([cert]))).toBe('');
    // Node's shared root store is copied before the addition, not changed
    expect(await verify(tls.createSecureContext())).not.toBe('');
    expect(await verify(contextTrusting([]))).not.toBe('');
  });

  test('every certificate of several texts is added, not only the first', async () => {
    const other = (await selfSigned()).cert;
    expect(await verify(contextTrusting([other]))).not.toBe('');
    expect(await verify(contextTrusting([other, `${tls.rootCertificates[1]}\n${cert}`]))).toBe('');
  });
});
