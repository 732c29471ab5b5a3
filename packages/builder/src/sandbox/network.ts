import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { BuildError } from '../errors.js';

/**
 * RUN's default network: its own network namespace with outbound access through slirp4netns,
 * where the host's loopback (127.0.0.1 services, abstract unix sockets) is out of reach.
 *
 * Why slirp4netns and not a veth pair + NAT: NAT needs iptables/nftables rules and
 * `ip_forward=1` in the host's namespace (a host-wide change), addresses that do not collide
 * with the host's networks, and rules to remove after a crash. slirp4netns (what BuildKit's
 * rootless mode and Podman use) changes nothing on the host: it opens ordinary sockets from the
 * host's namespace for the RUN, refuses the host's loopback with `--disable-host-loopback`,
 * answers DNS on 10.0.2.3 (forwarding to the host's resolvers, even loopback ones), and exits
 * when the pipe we hold closes (`--exit-fd`), so a killed hoist leaves nothing behind.
 *
 * The namespace is held by `unshare --net` running `cat` on a pipe from this process (it brings
 * `lo` up first): it goes away with us too. runc joins it by path (`/proc/PID/ns/net`), so the
 * network is up before the RUN's first instruction, without a create/start split of the runtime.
 */

/** The network a sandbox gets. `sandbox` is the default (own namespace, outbound only). */
export type NetworkMode = 'sandbox' | 'host' | 'none';

/** The build-wide default (`--network`): `default` is the sandbox network. */
export type DefaultNetwork = 'default' | 'host' | 'none';

/** Slirp's DNS forwarder inside the namespace (its default CIDR is 10.0.2.0/24). */
export const SANDBOX_NAMESERVER = '10.0.2.3';

const START_TIMEOUT_MS = 30_000;
const STANDARD_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** A RUN's network: its own `--network` flag, else the build's default. */
export function runNetwork(flag: 'default' | 'host' | 'none', buildDefault: DefaultNetwork | undefined): NetworkMode {
  const mode = flag === 'default' ? (buildDefault ?? 'default') : flag;
  return mode === 'default' ? 'sandbox' : mode;
}

/** Whether this process may open the tun device slirp4netns needs (rootless, it is not the host's root). */
export function tunUsable(device = '/dev/net/tun'): boolean {
  try {
    accessSync(device, constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The build's default network. As root the sandbox network never falls back (a missing
 * slirp4netns is an error). Rootless, slirp4netns opens /dev/net/tun from inside the user
 * namespace; where the host keeps that device from the user (mode 0600 instead of the usual
 * 0666), RUN shares the host network, as BuildKit's rootless mode does by default, and the
 * build says so: the RUN can reach nothing the invoking user's own processes cannot.
 */
export function effectiveDefaultNetwork(requested: DefaultNetwork | undefined, o: { rootless: boolean; tunUsable: () => boolean }): { network: DefaultNetwork; warning?: string } {
  const network = requested ?? 'default';
  if (network !== 'default' || !o.rootless || o.tunUsable()) return { network };
  return {
    network: 'host',
    warning:
      'rootless: /dev/net/tun is not open to your user, so slirp4netns cannot give RUN its own network namespace; RUN uses the host network (as BuildKit rootless does). ' +
      'Fix: `chmod 0666 /dev/net/tun` (the usual mode) for an isolated network, or build with --network none',
  };
}

/** /etc/resolv.conf for the sandbox network: slirp's forwarder, the host's search domains and options. */
export function sandboxResolvConf(hostText: string): string {
  const keep = hostText.split('\n').filter((l) => /^\s*(search|domain|options)\s/.test(l));
  return [`nameserver ${SANDBOX_NAMESERVER}`, ...keep, ''].join('\n');
}

export interface SandboxNetwork {
  /** The namespace for the runtime spec (`linux.namespaces[{type:'network', path}]`). */
  netns: string;
  close(): Promise<void>;
}

export interface OpenNetworkOptions {
  /** Where to look for slirp4netns, unshare and ip (default: $PATH and the sbin directories). */
  searchPath?: string[];
  signal?: AbortSignal;
}

function findTool(name: string, searchPath: string[]): string | undefined {
  for (const dir of searchPath) {
    const p = path.join(dir, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

function defaultSearchPath(): string[] {
  return [...new Set([...(process.env.PATH ?? '').split(':').filter(Boolean), ...STANDARD_PATH])];
}

function unavailable(why: string): BuildError {
  return new BuildError(
    'NETWORK_UNAVAILABLE',
    `RUN's default network (its own network namespace) needs slirp4netns: ${why}; install it with \`apt-get install slirp4netns\`, or build with --network host or --network none`,
  );
}

/** Resolves when `stream` yields `token`; rejects when the child ends first, the time is up or the build is cancelled. */
function waitFor(child: ChildProcess, stream: Readable, token: string, what: string, signal?: AbortSignal): Promise<void> {
  let errText = '';
  child.stderr?.on('data', (d: Buffer) => (errText = (errText + d.toString()).slice(-4000)));
  return new Promise<void>((resolve, reject) => {
    let seen = '';
    let settled = false;
    const settle = (e?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (e) reject(e);
      else resolve();
    };
    const fail = (msg: string): void => settle(unavailable(`${msg}${errText.trim() ? `: ${errText.trim()}` : ''}`));
    const onAbort = (): void => settle(new BuildError('CANCELLED', 'build cancelled'));
    const timer = setTimeout(() => fail(`${what} did not start within ${START_TIMEOUT_MS / 1000}s`), START_TIMEOUT_MS);
    signal?.addEventListener('abort', onAbort, { once: true });
    stream.on('data', (d: Buffer) => {
      seen += d.toString();
      if (seen.includes(token)) settle();
    });
    child.once('error', (e) => fail(`${what} could not start (${e.message})`));
    child.once('close', (code) => fail(`${what} exited with code ${code}`));
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('close', () => resolve()));
}

function startHolder(unshare: string, ip: string): ChildProcess {
  // `cat` reads the pipe from us until it closes: the namespace lives exactly as long as we want it
  const script = `"$0" link set lo up || exit 1; echo ready; exec cat >/dev/null`;
  return spawn(unshare, ['--net', '--', '/bin/sh', '-c', script, ip], { stdio: ['pipe', 'pipe', 'pipe'] });
}

function startSlirp(slirp: string, pid: number): ChildProcess {
  const args = ['--configure', '--mtu=65520', '--disable-host-loopback', '--enable-sandbox', '--enable-seccomp', '--ready-fd=3', '--exit-fd=4', String(pid), 'tap0'];
  return spawn(slirp, args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
}

/** A fresh network namespace with outbound access (see the module comment); close() removes it. */
export async function openSandboxNetwork(opts: OpenNetworkOptions = {}): Promise<SandboxNetwork> {
  const search = opts.searchPath ?? defaultSearchPath();
  const slirpPath = findTool('slirp4netns', search);
  if (!slirpPath) throw unavailable('slirp4netns is not installed');
  const unshare = findTool('unshare', search);
  const ip = findTool('ip', search);
  if (!unshare || !ip) throw unavailable(`${!unshare ? 'unshare (util-linux)' : 'ip (iproute2)'} is not installed`);
  const holder = startHolder(unshare, ip);
  let slirp: ChildProcess | undefined;
  const close = async (): Promise<void> => {
    (slirp?.stdio[4] as Readable | undefined)?.destroy();
    slirp?.kill('SIGTERM');
    holder.stdin?.end();
    // slirp4netns takes ~20 ms to exit (the kernel tears its tap device down): not worth waiting
    // for, it is told to go and holds nothing on the host; the namespace holder exits at once
    await exited(holder);
  };
  try {
    await waitFor(holder, holder.stdout!, 'ready', 'the network namespace holder (unshare --net)', opts.signal);
    slirp = startSlirp(slirpPath, holder.pid!);
    await waitFor(slirp, slirp.stdio[3] as Readable, '1', 'slirp4netns', opts.signal);
  } catch (e) {
    holder.kill('SIGKILL');
    slirp?.kill('SIGKILL');
    await close();
    throw e;
  }
  return { netns: `/proc/${holder.pid}/ns/net`, close };
}

/** A sandbox's network for the runtime spec, and how to release it. */
export interface RunNetwork {
  spec: 'host' | 'none' | { netns: string };
  close(): Promise<void>;
}

/** The namespace a mode needs (only `sandbox` needs one to be prepared); close() always. */
export async function openNetwork(mode: NetworkMode, opts: OpenNetworkOptions = {}): Promise<RunNetwork> {
  if (mode !== 'sandbox') return { spec: mode, close: async () => undefined };
  const net = await openSandboxNetwork(opts);
  return { spec: { netns: net.netns }, close: net.close };
}
