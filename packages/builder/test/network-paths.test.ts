/**
 * RUN's default network and the sandboxes' watchdog, each made two ways: by the syscall helper
 * (the usual way) and by Node itself where the helper cannot run. Both must give the same
 * thing: a namespace of its own with lo up and slirp's tap0, gone after close; a watchdog
 * that a test (or an operator) finds by the store and the owner's pid.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { SyscallHelper } from '@hoist/snapshotter';
import { openSandboxNetwork } from '@hoist/builder';
import { startWatchdog } from '../src/sandbox/watchdog.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return readlinkSync(`/proc/${pid}/exe`) !== '';
  } catch {
    return false;
  }
}

/** `ip` inside the namespace at `netns`. */
function ipIn(netns: string, args: string[]): string {
  const r = spawnSync('nsenter', [`--net=${netns}`, 'ip', ...args]);
  expect(r.status).toBe(0);
  return r.stdout.toString();
}

/** This machine's first address that is not loopback (what a RUN reaches through slirp4netns). */
function hostAddress(): string {
  const a = Object.values(networkInterfaces())
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal);
  if (!a) throw new Error('this test needs a network interface other than lo');
  return a.address;
}

/** What a TCP server on the host's address receives from a client in the namespace at `netns`. */
async function sentFromInside(netns: string): Promise<string> {
  const got = new Promise<string>((resolve) => {
    const server = createServer((c) => {
      let text = '';
      c.on('data', (d: Buffer) => (text += d.toString()));
      c.on('end', () => {
        server.close();
        resolve(text);
      });
    });
    server.listen(0, hostAddress(), () => {
      const { port } = server.address() as AddressInfo;
      const script = `exec 3<>/dev/tcp/$0/$1 && echo hello from the namespace >&3`;
      const client = spawn('nsenter', [`--net=${netns}`, 'bash', '-c', script, hostAddress(), String(port)], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
      let err = '';
      client.stderr.on('data', (d: Buffer) => (err += d.toString()));
      client.on('close', (code) => {
        if (code === 0) return;
        server.close();
        resolve(`client failed (${code}): ${err}`);
      });
    });
  });
  return got;
}

/** The command names of every process below `pid`. */
function descendants(pid: number): string[] {
  const rows = spawnSync('ps', ['-e', '-o', 'pid=,ppid=,comm=']).stdout.toString().trim().split('\n').map((l) => l.trim().split(/\s+/));
  const below = new Set([pid]);
  const names: string[] = [];
  for (let grew = true; grew; ) {
    grew = false;
    for (const [p, pp, comm] of rows) {
      if (!below.has(Number(p)) && below.has(Number(pp))) {
        below.add(Number(p));
        names.push(comm!);
        grew = true;
      }
    }
  }
  return names;
}

async function until(cond: () => boolean, limitMs = 10_000): Promise<boolean> {
  for (const end = Date.now() + limitMs; Date.now() < end; await new Promise((r) => setTimeout(r, 20))) if (cond()) return true;
  return cond();
}

describe.each([
  ['the syscall helper', () => new SyscallHelper()],
  ['Node itself (no helper)', () => new SyscallHelper({ arch: 'none' })],
])('the sandbox network, started by %s', (_, make) => {
  const helper = make();
  afterAll(() => helper.close());

  it('is a namespace of its own with lo up and slirp4netns on tap0 (10.0.2.100), through which it reaches the host network; close ends its holder', async () => {
    const net = await openSandboxNetwork({ helper });
    const pid = Number(/^\/proc\/(\d+)\/ns\/net$/.exec(net.netns)![1]);
    try {
      expect(readlinkSync(net.netns)).not.toBe(readlinkSync('/proc/self/ns/net'));
      expect(ipIn(net.netns, ['-o', 'link', 'show', 'lo'])).toMatch(/<LOOPBACK,UP,LOWER_UP>/);
      expect(ipIn(net.netns, ['-o', '-4', 'addr', 'show', 'tap0'])).toMatch(/inet 10\.0\.2\.100\/24/);
      expect(ipIn(net.netns, ['route', 'show', 'default'])).toMatch(/^default via 10\.0\.2\.2 dev tap0/);
      expect(await sentFromInside(net.netns)).toBe('hello from the namespace\n');
    } finally {
      await net.close();
    }
    expect(await until(() => !alive(pid))).toBe(true);
  });

  it('a build cancelled before or while the network starts gets CANCELLED, and nothing of that network stays', async () => {
    const before = new AbortController();
    before.abort();
    await expect(openSandboxNetwork({ helper, signal: before.signal })).rejects.toMatchObject({ code: 'CANCELLED' });
    const during = new AbortController();
    const opening = openSandboxNetwork({ helper, signal: during.signal });
    during.abort();
    await expect(opening).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(await until(() => !descendants(process.pid).some((c) => c === 'slirp4netns' || c === 'unshare' || c === 'cat'))).toBe(true);
  });
});

describe('the watchdog', () => {
  const pgrep = (root: string): number[] =>
    spawnSync('pgrep', ['-f', `reclaim-main\\.js ${root} ${process.pid}$`]).stdout.toString().split('\n').filter(Boolean).map(Number);

  it.each([
    ['the syscall helper', () => new SyscallHelper(), 'hoist-helper'],
    ['a shell, where there is no helper', () => new SyscallHelper({ arch: 'none' }), '/bin/sh'],
  ])('is %s, found by the store and the owner pid, and exits when closed', async (_, make, name) => {
    const helper = make();
    const root = `/nonexistent/store-${name.replace(/\W/g, '')}`;
    const dog = startWatchdog(root, helper);
    try {
      expect(await until(() => pgrep(root).length === 1)).toBe(true);
      const [pid] = pgrep(root);
      expect(spawnSync('cat', [`/proc/${pid}/cmdline`]).stdout.toString().split(/[\0 ]/)[0]).toBe(name);
      dog.close();
      helper.close();
      expect(await until(() => !alive(pid!))).toBe(true);
    } finally {
      dog.close();
      helper.close();
    }
  });
});
