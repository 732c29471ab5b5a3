import { promises as fsp } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { makeTestTls, type TestTls } from '@hoist/testkit';
import { speaksTls } from '../src/tls-sniff.js';

/** Listen on a free loopback port; the host:port and a stop function. */
async function listen(server: net.Server): Promise<{ hostPort: string; stop: () => Promise<void> }> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  return { hostPort: `127.0.0.1:${port}`, stop: () => new Promise((r) => server.close(() => r())) };
}

describe('speaksTls (which schemes a loopback or insecure registry is tried with)', () => {
  let certs: TestTls;
  const opened: Array<() => Promise<void>> = [];
  beforeAll(async () => {
    certs = await makeTestTls();
  });
  afterEach(async () => {
    for (const stop of opened.splice(0)) await stop();
  });
  afterAll(async () => {
    await certs.remove();
  });
  async function serve(server: net.Server): Promise<string> {
    const s = await listen(server);
    opened.push(s.stop);
    return s.hostPort;
  }
  const tlsServer = async (o: tls.TlsOptions = {}): Promise<tls.Server> =>
    tls.createServer({ cert: await fsp.readFile(certs.certFile), key: await fsp.readFile(certs.keyFile), ...o }, (s) => s.end());

  test('a plain HTTP server: no', async () => {
    const hostPort = await serve(http.createServer((_req, res) => res.end('{}')));
    expect(await speaksTls(hostPort, { timeoutMs: 10_000 })).toBe(false);
  });

  test('a TLS server, although its certificate is trusted by nobody here: yes', async () => {
    const hostPort = await serve(await tlsServer());
    expect(await speaksTls(hostPort, { timeoutMs: 10_000 })).toBe(true);
  });

  test('a TLS server that demands a client certificate (it refuses the handshake with an alert): yes', async () => {
    const hostPort = await serve(await tlsServer({ requestCert: true, rejectUnauthorized: true, ca: [certs.caCert] }));
    expect(await speaksTls(hostPort, { timeoutMs: 10_000 })).toBe(true);
  });

  test('nothing listening: no (the plain request reports the refusal)', async () => {
    const s = await listen(net.createServer());
    await s.stop();
    expect(await speaksTls(s.hostPort, { timeoutMs: 10_000 })).toBe(false);
  });

  test('a server that accepts and never answers: no, once the timeout passes (https would time out the same)', async () => {
    const held: net.Socket[] = [];
    const server = net.createServer((c) => held.push(c));
    const hostPort = await serve(server);
    opened.unshift(async () => held.forEach((c) => c.destroy()));
    expect(await speaksTls(hostPort, { timeoutMs: 200 })).toBe(false);
    expect(held).toHaveLength(1);
  });

  test('an aborted operation leaves the answer to the https request (which then reports the abort)', async () => {
    const hostPort = await serve(http.createServer((_req, res) => res.end('{}')));
    expect(await speaksTls(hostPort, { timeoutMs: 10_000, signal: AbortSignal.abort() })).toBe(true);
  });
});
