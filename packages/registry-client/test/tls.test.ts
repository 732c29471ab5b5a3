import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { makeTestTls, startRegistry, type RunningRegistry, type TestTls } from '@hoist/testkit';
import { RegistryClient, RegistryError } from '@hoist/registry-client';
import { makeImage, newStore, tmpDir } from './helpers.js';

describe('TLS', () => {
  let tls: TestTls;
  let reg: RunningRegistry;
  beforeAll(async () => {
    tls = await makeTestTls();
  });
  afterAll(async () => {
    await tls.remove();
  });
  beforeEach(async () => {
    reg = await startRegistry({ httpExtra: tls.registryHttpExtra, tls: true, caFile: tls.caFile });
  });
  afterEach(async () => {
    await reg.stop();
  });

  test('a registry with a certificate from a private CA: tlsCa option', async () => {
    const img = await makeImage();
    const client = new RegistryClient({ tlsCa: [tls.caFile], certsDirs: [] });
    try {
      await client.push(img.store, img.descriptor, `${reg.host}/team/app:1`);
      expect((await client.session(reg.host).baseUrl()).protocol).toBe('https:');
      const dst = await newStore();
      expect((await client.pull(`${reg.host}/team/app:1`, dst)).digest).toBe(img.descriptor.digest);
    } finally {
      client.close();
    }
  });

  test('the CA from a certs.d directory (Docker layout)', async () => {
    const certs = await tmpDir();
    await fsp.mkdir(path.join(certs, reg.host));
    await fsp.copyFile(tls.caFile, path.join(certs, reg.host, 'ca.crt'));
    const client = new RegistryClient({ certsDirs: [certs] });
    try {
      const img = await makeImage();
      await client.push(img.store, img.descriptor, `${reg.host}/team/app:1`);
    } finally {
      client.close();
      await fsp.rm(certs, { recursive: true });
    }
  });

  test('an untrusted certificate fails with a TLS error, never falling back to plain HTTP', async () => {
    const client = new RegistryClient({ certsDirs: [], retry: { attempts: 1 } });
    const e = (await client.resolve(`${reg.host}/team/app:1`).catch((x: unknown) => x)) as RegistryError;
    expect(e).toBeInstanceOf(RegistryError);
    expect(e.code).toBe('TLS');
    expect(e.message).toContain(`/etc/docker/certs.d/${reg.host}/ca.crt`);
    client.close();
  });

  test('an insecure registry is used without verifying its certificate', async () => {
    const client = new RegistryClient({ certsDirs: [], insecureRegistries: [reg.host] });
    try {
      const img = await makeImage();
      await client.push(img.store, img.descriptor, `${reg.host}/team/app:1`);
      expect((await client.session(reg.host).baseUrl()).protocol).toBe('https:');
    } finally {
      client.close();
    }
  });
});

test('a registry that demands a client certificate: the client.cert/client.key pair of its certs.d directory', async () => {
  const certs = await makeTestTls();
  const dirs = await tmpDir();
  const reg = await startRegistry({ httpExtra: `${certs.registryHttpExtra}\n    clientcas:\n      - ${certs.caFile}`, tls: true, caFile: certs.caFile });
  try {
    const hostDir = path.join(dirs, reg.host);
    await fsp.mkdir(hostDir);
    await fsp.copyFile(certs.caFile, path.join(hostDir, 'ca.crt'));
    const img = await makeImage();
    const without = new RegistryClient({ certsDirs: [dirs], retry: { attempts: 1 } });
    const refused = await without.push(img.store, img.descriptor, `${reg.host}/team/app:1`).catch((x: unknown) => x);
    without.close();
    expect(refused).toBeInstanceOf(RegistryError);
    await makeClientCert(certs, hostDir);
    const client = new RegistryClient({ certsDirs: [dirs] });
    try {
      await client.push(img.store, img.descriptor, `${reg.host}/team/app:1`);
      expect((await client.session(reg.host).baseUrl()).protocol).toBe('https:');
    } finally {
      client.close();
    }
  } finally {
    await reg.stop();
    await certs.remove();
  }
});

/** client.cert and client.key in `dir`: a client certificate the test CA signed. */
async function makeClientCert(certs: TestTls, dir: string): Promise<void> {
  const run = (args: string[]): void => {
    execFileSync('openssl', args, { cwd: certs.dir, stdio: 'pipe' });
  };
  const key = path.join(dir, 'client.key');
  const csr = path.join(certs.dir, 'client.csr');
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=hoist test client']);
  await fsp.writeFile(path.join(certs.dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  run(['x509', '-req', '-in', csr, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', path.join(dir, 'client.cert'), '-days', '2', '-extfile', 'client.ext']);
}

test('a loopback registry speaks plain HTTP', async () => {
  const reg = await startRegistry();
  const client = new RegistryClient();
  try {
    expect((await client.session(reg.host).baseUrl()).protocol).toBe('http:');
  } finally {
    client.close();
    await reg.stop();
  }
});
