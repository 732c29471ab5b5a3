/**
 * NODE_EXTRA_CA_CERTS through the `hoist` bin (issue 16): Node does not load the file at start
 * (a sh bin passes it on as HOIST_EXTRA_CA_CERTS), and yet hoist trusts its certificates on every
 * TLS connection it makes: a registry (pull) and an ADD https:// URL. Each case has its control:
 * without the CA the same command fails on the certificate.
 */
import { promises as fsp } from 'node:fs';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { hoist, makeTestTls, run, startRegistry, storeWithBusybox, tempDir, REPO_ROOT, type RunningRegistry, type TestTls } from '@hoist/testkit';

const BIN = path.join(REPO_ROOT, 'packages', 'cli', 'bin', 'hoist');

/** The bin with NODE_EXTRA_CA_CERTS as given (and none from this machine's environment). */
function viaBin(args: string[], extraCa: string | undefined) {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', HOIST_REGISTRY_DEADLINE: '2' };
  delete env.NODE_EXTRA_CA_CERTS;
  delete env.HOIST_EXTRA_CA_CERTS;
  if (extraCa) env.NODE_EXTRA_CA_CERTS = extraCa;
  return run(BIN, args, { env });
}

describe('NODE_EXTRA_CA_CERTS, deferred by the bin', () => {
  let tls: TestTls;
  let reg: RunningRegistry;
  let root: string;
  let work: string;
  let files: https.Server;
  let filesHost = '';

  beforeAll(async () => {
    [tls, root, work] = await Promise.all([makeTestTls(), storeWithBusybox(), tempDir('extra-ca')]);
    reg = await startRegistry({ httpExtra: tls.registryHttpExtra, tls: true, caFile: tls.caFile });
    const push = await hoist(['push', '--root', root, '--tls-ca', tls.caFile, 'busybox:latest', `${reg.host}/ca/busybox:1`]);
    if (push.code !== 0) throw new Error(push.stderr);
    const [cert, key] = await Promise.all([fsp.readFile(tls.certFile), fsp.readFile(tls.keyFile)]);
    files = https.createServer({ cert, key }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('fetched over TLS\n');
    });
    await new Promise<void>((r) => files.listen(0, '127.0.0.1', r));
    filesHost = `127.0.0.1:${(files.address() as AddressInfo).port}`;
  }, 120_000);

  afterAll(async () => {
    await new Promise((r) => files?.close(r));
    await reg?.stop();
    await tls?.remove();
  });

  it('Node does not read the file as it starts (no warning for a missing one), hoist runs', async () => {
    const direct = await run(process.execPath, [path.join(REPO_ROOT, 'packages', 'cli', 'bundle', 'hoist.js'), 'version'], { env: { ...process.env, NODE_EXTRA_CA_CERTS: '/nonexistent/extra.pem' } });
    expect(direct.stderr).toContain('Ignoring extra certs from `/nonexistent/extra.pem`');
    const r = await viaBin(['version'], '/nonexistent/extra.pem');
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^hoist \d+\.\d+\.\d+\n$/);
    expect(r.code).toBe(0);
  });

  it('a registry whose CA only NODE_EXTRA_CA_CERTS names is trusted (and is not without it)', async () => {
    const ref = `${reg.host}/ca/busybox:1`;
    const without = await viaBin(['pull', '--root', path.join(work, 'store-a'), ref], undefined);
    expect(without.code).not.toBe(0);
    expect(without.stderr).toContain('--tls-ca FILE');
    const trusted = await viaBin(['pull', '--root', path.join(work, 'store-b'), ref], tls.caFile);
    expect(trusted.stderr).not.toContain('ERROR');
    expect(trusted.code).toBe(0);
  }, 60_000);

  it('so is an https:// URL that ADD downloads', async () => {
    const ctx = path.join(work, 'ctx');
    await fsp.mkdir(ctx, { recursive: true });
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), `FROM busybox:latest\nADD https://${filesHost}/greeting.txt /greeting.txt\nRUN grep -q 'fetched over TLS' /greeting.txt\n`);
    const without = await viaBin(['build', '--root', root, '-q', ctx], undefined);
    expect(without.code).not.toBe(0);
    expect(without.stderr).toMatch(/ADD https:\/\/127\.0\.0\.1:\d+\/greeting\.txt: .*(certificate|self-signed|issuer)/i);
    const trusted = await viaBin(['build', '--root', root, '-q', ctx], tls.caFile);
    expect(trusted.stderr).not.toContain('ERROR');
    expect(trusted.code).toBe(0);
  }, 120_000);
});
