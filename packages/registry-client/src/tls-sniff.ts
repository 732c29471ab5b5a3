import * as net from 'node:net';
import * as tls from 'node:tls';

/**
 * Errors after which an https request would certainly fail too, and not for a certificate: the
 * other end answered the ClientHello in something other than TLS, or could not be reached, or
 * hung up.
 */
const HTTPS_FAILS = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * Whether `hostPort` answers a TLS handshake, for a registry that may also be spoken to in plain
 * HTTP (a loopback one, or one named by --insecure-registry). Such a registry is still tried
 * with https first, as Docker does; this finds out cheaply whether that can work (issue 16).
 * An https request needs a TLS context that trusts Node's roots, which Node parses at the first
 * one (~18 ms of CPU, ~40 ms with NODE_EXTRA_CA_CERTS): a plain-HTTP registry would pay that only
 * to be refused. The handshake here trusts nothing and sends nothing but a ClientHello; its
 * answer is never used for a request. False only where the https request would fail, and not on
 * a certificate (the plain one is then tried, as it was after such a failure): an answer that is
 * not TLS, no connection, a hang-up or no answer within the request's timeout. True on a
 * handshake, a TLS alert (a registry that wants a client certificate) or any other doubt, so that
 * the https request decides as before.
 */
export function speaksTls(hostPort: string, o: { timeoutMs: number; signal?: AbortSignal }): Promise<boolean> {
  const url = new URL(`https://${hostPort}/`);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port || 443);
  return new Promise((resolve) => {
    let done = false;
    const finish = (v: boolean): void => {
      if (done) return;
      done = true;
      o.signal?.removeEventListener('abort', onAbort);
      sock.destroy();
      resolve(v);
    };
    const onAbort = (): void => finish(true);
    const sock = tls.connect({
      host,
      port,
      ...(net.isIP(host) ? {} : { servername: host }),
      rejectUnauthorized: false,
      secureContext: tls.createSecureContext({ ca: [] }),
    });
    sock.setTimeout(o.timeoutMs, () => finish(false));
    sock.on('secureConnect', () => finish(true));
    sock.on('error', (e: NodeJS.ErrnoException) => finish(!HTTPS_FAILS.has(e.code ?? '')));
    sock.on('close', () => finish(false));
    if (o.signal?.aborted) finish(true);
    else o.signal?.addEventListener('abort', onAbort, { once: true });
  });
}
