import { readFileSync } from 'node:fs';
import * as tls from 'node:tls';

/**
 * Where the `hoist` bin puts NODE_EXTRA_CA_CERTS (issue 16). Node reads and parses that file as
 * it starts, before any code runs: with a system bundle of ~140 certificates that is ~38 ms of
 * every start, also of the many commands that make no TLS connection. The bin (a shell script,
 * packages/cli/bin/hoist) therefore starts Node without it and passes the file on under this
 * name; hoist adds its certificates to the roots of every TLS connection it makes (registries,
 * ADD and context URLs), which is what NODE_EXTRA_CA_CERTS does, only when one is made.
 */
const DEFERRED_CA_ENV = 'HOIST_EXTRA_CA_CERTS';

/**
 * The deferred file's PEM text, or none when there is no such file or it cannot be read (as
 * Node ignores an unreadable NODE_EXTRA_CA_CERTS, with a warning at start).
 */
export function deferredCaCerts(env: NodeJS.ProcessEnv = process.env): string[] {
  const f = env[DEFERRED_CA_ENV];
  if (!f) return [];
  try {
    return [readFileSync(f, 'utf8')];
  } catch {
    return [];
  }
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

/** What identifies a certificate's PEM block: its base64 text, without armour lines or line breaks. */
function pemBody(block: string): string {
  return block.replace(/-----[^-]*-----|\s+/g, '');
}

/**
 * The PEM blocks of `pems` (texts of any number of blocks each) that Node's own roots do not
 * already hold, each once, in order. Issue 16: a NODE_EXTRA_CA_CERTS that names the system bundle
 * repeats nearly all of Node's roots (Debian 12's 144 certificates, 122 of them identical), and
 * every certificate handed to a TLS context is parsed again. A text without any PEM block is
 * kept whole, so that the TLS layer reports it as before.
 */
export function certificatesBeyondRoots(pems: string[]): string[] {
  const seen = new Set(tls.rootCertificates.map(pemBody));
  const out: string[] = [];
  for (const text of pems) {
    const blocks = text.match(PEM_BLOCK);
    if (!blocks) {
      if (text.trim() !== '') out.push(text);
      continue;
    }
    for (const b of blocks) {
      const key = pemBody(b);
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(b);
    }
  }
  return out;
}

interface NativeContext {
  addCACert?: (pem: string) => void;
}

/**
 * A TLS context that trusts Node's roots and the certificates `extra` adds (`base`: client key
 * and certificate, never `ca`). Built from Node's default context, whose root store is parsed
 * once per process and shared, and the extra certificates added to it: Node copies the shared
 * store before the first addition, so no other context trusts them. Handing `ca` the roots
 * instead parses all ~144 again for every context (~18 ms; measured in issue 16). Should a later
 * Node lack the native `addCACert` this relies on, the roots go through `ca` as before.
 */
export function contextTrusting(extra: string[], base: tls.SecureContextOptions = {}): tls.SecureContext {
  const certs = certificatesBeyondRoots(extra);
  const ctx = tls.createSecureContext(base);
  if (certs.length === 0) return ctx;
  const native = (ctx as unknown as { context?: NativeContext }).context;
  if (typeof native?.addCACert !== 'function') return tls.createSecureContext({ ...base, ca: [...tls.rootCertificates, ...certs] });
  for (const c of certs) native.addCACert(c);
  return ctx;
}
