import { networkInterfaces } from 'node:os';

/**
 * Parsing of the buildx flags that shape every RUN's sandbox: `--add-host`, `--shm-size`,
 * `--ulimit`. Values keep Docker's syntax; errors are plain `Error`s whose message is meant for
 * a usage error (the CLI exits 2 with it).
 */

/** One `--add-host host:ip` entry; `ip` may be `host-gateway` (resolved per RUN network). */
export interface ExtraHost {
  host: string;
  ip: string;
}

/** One `--ulimit name=soft[:hard]` as a runtime-spec rlimit. */
export interface Ulimit {
  /** `RLIMIT_NOFILE`, … */
  type: string;
  soft: number;
  hard: number;
}

/** The RUN sandbox settings these flags give (BuildOptions.runHost). */
export interface RunHostOptions {
  extraHosts?: ExtraHost[];
  /** Size of /dev/shm in bytes (Docker's default: 64 MiB). */
  shmSizeBytes?: number;
  ulimits?: Ulimit[];
}

/** `host-gateway`: the host as a RUN sees it (slirp4netns' gateway, or loopback on the host network). */
export const HOST_GATEWAY = 'host-gateway';

/** The resource names Docker's `--ulimit` accepts (go-units), in its order. */
export const ULIMIT_NAMES = ['core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack'] as const;

const IPV4 = /^(\d{1,3})(\.\d{1,3}){3}$/;
const IPV6 = /^[0-9a-fA-F:.]+$/;
const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/;

/** `--add-host host:ip` (also `host=ip`, as Docker 25 accepts); IPv6 addresses may be bracketed. */
export function parseAddHost(v: string): ExtraHost {
  const m = /^([^:=]+)[:=](.+)$/.exec(v);
  if (!m) throw new Error(`--add-host "${v}": expected HOST:IP (e.g. db:10.0.0.5 or gw:host-gateway)`);
  const host = m[1]!;
  let ip = m[2]!;
  if (/^\[.*\]$/.test(ip)) ip = ip.slice(1, -1);
  if (!HOSTNAME.test(host)) throw new Error(`--add-host "${v}": "${host}" is not a valid host name`);
  const v4ok = IPV4.test(ip) && ip.split('.').every((o) => Number(o) <= 255);
  if (ip !== HOST_GATEWAY && !v4ok && !(ip.includes(':') && IPV6.test(ip))) {
    throw new Error(`--add-host "${v}": "${ip}" is not an IP address or ${HOST_GATEWAY}`);
  }
  return { host, ip };
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** `--shm-size 128m` (Docker's units, binary; a bare number is bytes). */
export function parseShmSize(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(v.trim());
  const n = m ? Math.floor(Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!) : NaN;
  if (!(n > 0)) throw new Error(`--shm-size "${v}": expected a size such as 64m or 1g (units b, k, m, g)`);
  return n;
}

/** `--ulimit nofile=1024:2048` or `--ulimit nproc=512` (hard = soft), as Docker parses it. */
export function parseUlimit(v: string): Ulimit {
  const m = /^([a-z]+)=(\d+)(?::(\d+))?$/.exec(v);
  const name = m?.[1] ?? v.split('=')[0] ?? '';
  if (!(ULIMIT_NAMES as readonly string[]).includes(name)) {
    throw new Error(`--ulimit "${v}": unknown resource "${name}"; valid: ${ULIMIT_NAMES.join(', ')}`);
  }
  if (!m) throw new Error(`--ulimit "${v}": expected ${name}=SOFT[:HARD] with non-negative integers (e.g. nofile=1024:2048)`);
  const soft = Number(m[2]);
  const hard = m[3] !== undefined ? Number(m[3]) : soft;
  if (!Number.isSafeInteger(soft) || !Number.isSafeInteger(hard)) throw new Error(`--ulimit "${v}": value too large`);
  if (soft > hard) throw new Error(`--ulimit "${v}": soft limit ${soft} is above the hard limit ${hard}`);
  return { type: `RLIMIT_${name.toUpperCase()}`, soft, hard };
}

/** /etc/hosts of a RUN: the sandbox's own names, then the `--add-host` entries. */
export function hostsFileText(extra: readonly ExtraHost[], gateway: string): string {
  const lines = ['127.0.0.1\tlocalhost buildkitsandbox', '::1\tlocalhost ip6-localhost ip6-loopback'];
  for (const h of extra) lines.push(`${h.ip === HOST_GATEWAY ? gateway : h.ip}\t${h.host}`);
  return lines.join('\n') + '\n';
}

/**
 * What `host-gateway` means here: the host's first non-internal IPv4 address (reachable from
 * the sandbox network and the host network alike, as Docker's bridge gateway is), else loopback.
 */
export function hostGatewayAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}
