/**
 * A registry that accepts connections and never answers must not stall a pull: every wait for
 * a response head is bounded (headerTimeoutMs) and so are the retries (retry.totalMs). The test
 * sets both small and asserts the error, never the time it took.
 */
import * as http from 'node:http';
import * as net from 'node:net';
import { promises as fsp } from 'node:fs';
import { RegistryClient, RegistryError } from '@hoist/registry-client';
import { hoist } from '@hoist/testkit';
import { newStore, tmpDir } from './helpers.js';

const quick = { headerTimeoutMs: 100, retry: { attempts: 5, baseMs: 10, maxMs: 20, totalMs: 1_000 } };

/** A TCP server on 127.0.0.1 that accepts every connection, reads, and never writes a byte. */
async function silentServer(): Promise<{ port: number; connections: () => number; stop: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let count = 0;
  const server = net.createServer((s) => {
    count++;
    sockets.add(s);
    s.on('data', () => undefined);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => count,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** An HTTP server that answers the `/v2/` probe and nothing else (every other request hangs). */
async function probeOnlyServer(): Promise<{ port: number; hung: () => string[]; stop: () => Promise<void> }> {
  const hung: string[] = [];
  const server = http.createServer((req, res) => {
    if (req.url === '/v2/') {
      res.writeHead(200, { 'docker-distribution-api-version': 'registry/2.0', 'content-length': '2' }).end('{}');
      return;
    }
    hung.push(`${req.method} ${req.url}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    hung: () => hung,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function pullError(client: RegistryClient, ref: string): Promise<RegistryError> {
  const store = await newStore();
  try {
    await client.pull(ref, store);
  } catch (e) {
    if (e instanceof RegistryError) return e;
    throw e;
  } finally {
    client.close();
    await fsp.rm(store.root, { recursive: true, force: true });
  }
  throw new Error('the pull succeeded');
}

describe('a silent registry', () => {
  test('accepting TCP and never answering ends the pull in a TIMEOUT RegistryError', async () => {
    const srv = await silentServer();
    try {
      const e = await pullError(new RegistryClient(quick), `127.0.0.1:${srv.port}/team/app:1`);
      expect(e.code).toBe('TIMEOUT');
      expect(e.temporary).toBe(true);
      expect(e.message).toMatch(/no response from 127\.0\.0\.1:\d+ within \d+ ms/);
      expect(e.message).toMatch(/gave up after \d+ attempts?/);
      expect(e.hint).toMatch(/accepts connections but does not answer/);
      // it was retried (the server saw more than one connection), and not past the attempt limit:
      // each attempt tries https, then plain http (a loopback registry)
      expect(srv.connections()).toBeGreaterThan(1);
      expect(srv.connections()).toBeLessThanOrEqual(quick.retry.attempts * 2);
    } finally {
      await srv.stop();
    }
  }, 60_000);

  test('a registry that answers the probe but not the manifest request ends in TIMEOUT too', async () => {
    const srv = await probeOnlyServer();
    try {
      const e = await pullError(new RegistryClient(quick), `127.0.0.1:${srv.port}/team/app:1`);
      expect(e.code).toBe('TIMEOUT');
      expect(e.message).toMatch(/GET \/v2\/team\/app\/manifests\/1 failed: no response/);
      expect(srv.hung().length).toBeGreaterThan(0);
      expect(srv.hung().every((r) => r === 'GET /v2/team/app/manifests/1')).toBe(true);
      expect(srv.hung().length).toBeLessThanOrEqual(quick.retry.attempts);
    } finally {
      await srv.stop();
    }
  }, 60_000);

  test('hoist pull takes both bounds from the environment and reports the error without a stack', async () => {
    const [srv, root] = await Promise.all([silentServer(), tmpDir('hoist-silent-')]);
    try {
      const r = await hoist(['pull', '--root', root, `127.0.0.1:${srv.port}/team/app:1`], {
        env: { HOIST_REGISTRY_HEADER_TIMEOUT: '0.1', HOIST_REGISTRY_DEADLINE: '1' },
      });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/ERROR: .*no response from 127\.0\.0\.1:\d+ within 100 ms/);
      expect(r.stderr).toMatch(/does not answer/);
      expect(r.stderr).not.toMatch(/^\s+at /m);
      const bad = await hoist(['pull', '--root', root, `127.0.0.1:${srv.port}/team/app:1`], { env: { HOIST_REGISTRY_DEADLINE: 'soon' } });
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/HOIST_REGISTRY_DEADLINE must be a positive number of seconds, not "soon"/);
    } finally {
      await srv.stop();
      await fsp.rm(root, { recursive: true, force: true });
    }
  }, 60_000);
});
