import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { HelperUnavailable, NetnsFailure, syscalls, type SyscallHelper } from '@hoist/snapshotter';
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
 * The namespace is held by a process that lives exactly as long as a pipe from us: it goes away
 * with us too. runc joins it by path (`/proc/PID/ns/net`), so the network is up before the RUN's
 * first instruction, without a create/start split of the runtime. Where the syscall helper runs,
 * a child of it is the holder (unshare(2), lo up by ioctl) and another starts slirp4netns: a
 * fork of Node costs its main thread ~1-7 ms a process, and each exec more CPU while the steps
 * before the RUN need it. Elsewhere Node starts `unshare --net` running `ip link set lo up`,
 * then `cat` on the pipe, and slirp4netns itself.
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
  /** Who starts the processes (default: the process's syscall helper, when it is usable). */
  helper?: SyscallHelper;
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

const HOLDER_WHAT = 'the network namespace holder (unshare --net)';

/** The holder's argv: `cat` reads the pipe from us until it closes, so the namespace lives exactly as long as we want it. */
function holderArgv(unshare: string, ip: string): string[] {
  const script = `"$0" link set lo up || exit 1; echo ready; exec cat >/dev/null`;
  return [unshare, '--net', '--', '/bin/sh', '-c', script, ip];
}

/** slirp4netns's argv for the namespace of `pid`: ready on fd 3, gone when fd 4 ends. */
function slirpArgv(slirp: string, pid: string): string[] {
  return [slirp, '--configure', '--mtu=65520', '--disable-host-loopback', '--enable-sandbox', '--enable-seccomp', '--ready-fd=3', '--exit-fd=4', pid, 'tap0'];
}

/** The namespace holder's tools (only where Node holds the namespace itself). */
function holderTools(search: string[]): { unshare: string; ip: string } {
  const unshare = findTool('unshare', search);
  const ip = findTool('ip', search);
  if (!unshare || !ip) throw unavailable(`${!unshare ? 'unshare (util-linux)' : 'ip (iproute2)'} is not installed`);
  return { unshare, ip };
}

/** A fresh network namespace with outbound access (see the module comment); close() removes it. */
export async function openSandboxNetwork(opts: OpenNetworkOptions = {}): Promise<SandboxNetwork> {
  const search = opts.searchPath ?? defaultSearchPath();
  const slirp = findTool('slirp4netns', search);
  if (!slirp) throw unavailable('slirp4netns is not installed');
  if (opts.signal?.aborted) throw new BuildError('CANCELLED', 'build cancelled');
  const helper = opts.helper ?? syscalls;
  if (helper.usable) {
    try {
      return await viaHelper(helper, slirp, opts.signal);
    } catch (e) {
      if (!(e instanceof HelperUnavailable)) throw e;
    }
  }
  return viaNode({ ...holderTools(search), slirp }, opts.signal);
}

/** The error a NetnsFailure stands for (slirp4netns's failures worded as viaNode words them). */
function netnsError(f: NetnsFailure): BuildError {
  if (f.which === 'holder') return unavailable(`the network namespace could not be made: ${f.stderr.trim()}`);
  const msg = f.kind === 'timeout' ? `slirp4netns did not start within ${START_TIMEOUT_MS / 1000}s` : `slirp4netns exited with code ${f.code}`;
  return unavailable(`${msg}${f.stderr.trim() ? `: ${f.stderr.trim()}` : ''}`);
}

async function viaHelper(helper: SyscallHelper, slirp: string, signal?: AbortSignal): Promise<SandboxNetwork> {
  const opening = helper.netns({ slirp: slirpArgv(slirp, '%PID%'), timeoutSec: START_TIMEOUT_MS / 1000 });
  try {
    const { id, pid } = await unlessAborted(opening, signal);
    return { netns: `/proc/${pid}/ns/net`, close: () => helper.closeNetns(id).catch(() => undefined) };
  } catch (e) {
    // a cancelled open still comes up (or fails) in the helper: end it when it does
    void opening.then((n) => helper.closeNetns(n.id), () => undefined).catch(() => undefined);
    throw e instanceof NetnsFailure ? netnsError(e) : e;
  }
}

/** `p`, unless the build is cancelled first (then CANCELLED at once). */
function unlessAborted<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new BuildError('CANCELLED', 'build cancelled'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

async function viaNode(t: { unshare: string; ip: string; slirp: string }, signal?: AbortSignal): Promise<SandboxNetwork> {
  const [h0, ...hargs] = holderArgv(t.unshare, t.ip);
  const holder = spawn(h0!, hargs, { stdio: ['pipe', 'pipe', 'pipe'] });
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
    await waitFor(holder, holder.stdout!, 'ready', HOLDER_WHAT, signal);
    const [s0, ...sargs] = slirpArgv(t.slirp, String(holder.pid!));
    slirp = spawn(s0!, sargs, { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
    await waitFor(slirp, slirp.stdio[3] as Readable, '1', 'slirp4netns', signal);
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
