import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { tempDir } from './temp.js';

/** stdin is not a pipe here: a tool that exits early cannot fail us with EPIPE. */
const execFileP = promisify(execFile);

export interface TestTls {
  dir: string;
  /** CA certificate (PEM text) and its file. */
  caCert: string;
  caFile: string;
  /** Server certificate and key files (for the registry's `http.tls`). */
  certFile: string;
  keyFile: string;
  /** A YAML snippet for `startRegistry({ httpExtra })`. */
  registryHttpExtra: string;
  remove(): Promise<void>;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await execFileP('openssl', args, { cwd });
  } catch (e) {
    throw new Error(`openssl ${args.join(' ')} failed:\n${(e as { stderr?: string }).stderr ?? e}`);
  }
}

/**
 * A throw-away CA and a server certificate it signed (ECDSA P-256, valid two days) for
 * `hosts` (IP addresses and DNS names; default 127.0.0.1 and localhost). Made with openssl.
 */
export async function makeTestTls(opts: { hosts?: string[]; dir?: string } = {}): Promise<TestTls> {
  const dir = opts.dir ?? (await tempDir('tls'));
  const hosts = opts.hosts ?? ['127.0.0.1', 'localhost'];
  const san = hosts.map((h) => (/^[\d.]+$|:/.test(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=hoist test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  await openssl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', `/CN=${hosts[0]}`], dir);
  await fsp.writeFile(path.join(dir, 'server.ext'), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n`);
  await openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext'], dir);
  const caFile = path.join(dir, 'ca.crt');
  const certFile = path.join(dir, 'server.crt');
  const keyFile = path.join(dir, 'server.key');
  return {
    dir,
    caCert: await fsp.readFile(caFile, 'utf8'),
    caFile,
    certFile,
    keyFile,
    registryHttpExtra: ['  tls:', `    certificate: ${certFile}`, `    key: ${keyFile}`].join('\n'),
    remove: () => fsp.rm(dir, { recursive: true, force: true }),
  };
}
