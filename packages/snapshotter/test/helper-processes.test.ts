// The syscall helper's processes: the network it starts in the background (holder + slirp, here
// stand-ins made of sh, so that the order of events can be held at will) and the watchdog it
// becomes when its owner dies without disarming it.
import { spawn, spawnSync } from 'node:child_process';
import { promises as fsp, readFileSync, readlinkSync } from 'node:fs';
import * as path from 'node:path';
import { NetnsFailure, SyscallHelper } from '../src/syscall-helper.js';
import { tmpdir } from './helpers.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Exited (a zombie counts: a dead owner's children wait for init to reap them). */
function gone(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] === 'Z';
  } catch {
    return true;
  }
}

/** The helper's process id (a private field). */
function pidOfHelper(h: SyscallHelper): number {
  return (h as unknown as { proc: { pid: number } }).proc.pid;
}

/** Wait for `cond` (polled; `limitMs` only bounds a failing test). */
async function until(cond: () => boolean, limitMs = 10_000): Promise<boolean> {
  for (const end = Date.now() + limitMs; Date.now() < end; await new Promise((r) => setTimeout(r, 20))) if (cond()) return true;
  return cond();
}

/** A slirp stand-in: writes its pid argument and its own pid to `file`, reports ready on fd 3 (once `gate`, a FIFO, has been opened and closed by a writer, if given), lives until fd 4 ends. */
function fakeSlirp(file: string, gate = ''): string[] {
  return ['/bin/sh', '-c', 'echo "$1" > "$0"; echo $$ >> "$0"; [ -n "$2" ] && cat "$2" >/dev/null; echo 1 >&3; exec cat <&4 >/dev/null', file, '%PID%', gate];
}

/** `ip` inside the network namespace of `pid`. */
function ipIn(pid: number, args: string[]): string {
  const r = spawnSync('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', ...args]);
  expect(r.status).toBe(0);
  return r.stdout.toString();
}

describe('SyscallHelper.netns', () => {
  const h = new SyscallHelper();
  afterAll(() => h.close());

  test('starts in the background: calls made while it comes up are answered first; a namespace of its own with lo up; the slirp gets its pid; close ends both', async () => {
    const dir = await tmpdir('hn-');
    const gate = path.join(dir, 'gate');
    expect(spawnSync('mkfifo', [gate]).status).toBe(0);
    const seen = path.join(dir, 'slirp-saw');
    const events: string[] = [];
    const net = h.netns({ slirp: fakeSlirp(seen, gate), timeoutSec: 60 }).then((n) => {
      events.push('network up');
      return n;
    });
    await h.xattrsTree(dir);
    events.push('xattrs answered');
    await (await fsp.open(gate, 'w')).close();
    const { id, pid } = await net;
    expect(events).toEqual(['xattrs answered', 'network up']);
    expect(readlinkSync(`/proc/${pid}/ns/net`)).not.toBe(readlinkSync('/proc/self/ns/net'));
    expect(ipIn(pid, ['-o', 'link', 'show', 'lo'])).toMatch(/<LOOPBACK,UP,LOWER_UP>/);
    const [arg, slirpPid] = readFileSync(seen, 'utf8').trim().split('\n').map(Number);
    expect(arg).toBe(pid);
    expect(alive(slirpPid!)).toBe(true);
    await h.closeNetns(id);
    expect(await until(() => gone(pid) && gone(slirpPid!))).toBe(true);
  });

  test('networks are independent: closing one leaves the other up', async () => {
    const dir = await tmpdir('hn-');
    const a = await h.netns({ slirp: fakeSlirp(path.join(dir, 'a')), timeoutSec: 60 });
    const b = await h.netns({ slirp: fakeSlirp(path.join(dir, 'b')), timeoutSec: 60 });
    expect(readlinkSync(`/proc/${a.pid}/ns/net`)).not.toBe(readlinkSync(`/proc/${b.pid}/ns/net`));
    await h.closeNetns(a.id);
    expect(await until(() => gone(a.pid))).toBe(true);
    expect(gone(b.pid)).toBe(false);
    await h.closeNetns(b.id);
    expect(await until(() => gone(b.pid))).toBe(true);
  });

  test('a slirp that exits or never gets ready is reported with its stderr', async () => {
    const dir = await tmpdir('hn-');
    const slirpDies = h.netns({ slirp: ['/bin/sh', '-c', 'echo no tap >&2; exit 4'], timeoutSec: 60 });
    await expect(slirpDies).rejects.toEqual(new NetnsFailure('slirp', 'exit', 4, 'no tap\n'));
    const never = h.netns({ slirp: ['/bin/sh', '-c', 'echo stuck >&2; exec sleep 60'], timeoutSec: 1 });
    await expect(never).rejects.toMatchObject({ which: 'slirp', kind: 'timeout', stderr: 'stuck\n' });
    // and the helper goes on serving
    await expect(h.xattrsTree(dir)).resolves.toBeInstanceOf(Map);
  });

  test("a slirp started while the helper is armed as the watchdog (signals ignored) gets the default dispositions, not the helper's", async () => {
    const dir = await tmpdir('hn-');
    const armed = new SyscallHelper();
    try {
      await armed.onOrphaned(['/bin/true']);
      const out = path.join(dir, 'sigign');
      const slirp = ['/bin/sh', '-c', 'grep SigIgn /proc/$$/status > "$0"; echo 1 >&3; exec cat <&4 >/dev/null', out, '%PID%'];
      const n = await armed.netns({ slirp, timeoutSec: 60 });
      // SigIgn is a hex mask, bit (signal - 1): TERM 15, INT 2, HUP 1, QUIT 3, PIPE 13
      const mask = BigInt(`0x${readFileSync(out, 'utf8').split(/\s+/)[1]}`);
      expect([15, 2, 1, 3, 13].filter((sig) => (mask >> BigInt(sig - 1)) & 1n)).toEqual([]);
      await armed.closeNetns(n.id);
    } finally {
      armed.close();
    }
  });

  test('where no namespace can be made (no CAP_SYS_ADMIN), that is reported with why', async () => {
    const dir = await tmpdir('hn-');
    const perl = path.join(dir, 'perl');
    await fsp.writeFile(perl, '#!/bin/sh\nexec setpriv --bounding-set=-all --inh-caps=-all perl "$@"\n', { mode: 0o755 });
    const weak = new SyscallHelper({ perl });
    try {
      await expect(weak.netns({ slirp: fakeSlirp(path.join(dir, 's')), timeoutSec: 60 })).rejects.toEqual(
        new NetnsFailure('holder', 'exit', 1, 'unshare(CLONE_NEWNET): Operation not permitted'),
      );
    } finally {
      weak.close();
    }
  });
});

/**
 * A Node process that arms a helper (from the built package) with `argv` as its watchdog
 * command, disarms it when asked, prints the helper's pid, then dies by SIGKILL.
 */
async function ownerDies(argv: string[], disarm: boolean): Promise<number> {
  const mod = path.resolve('packages/snapshotter/dist/syscall-helper.js');
  const code = `import { SyscallHelper } from ${JSON.stringify(mod)};
const h = new SyscallHelper();
await h.onOrphaned(${JSON.stringify(argv)});
${disarm ? 'await h.disarm();' : ''}
process.stdout.write(String(h.proc.pid) + '\\n', () => process.kill(process.pid, 'SIGKILL'));`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((r) => child.on('close', r));
  expect(child.signalCode).toBe('SIGKILL');
  return Number(out.trim());
}

describe('SyscallHelper as the watchdog', () => {
  test('its owner killed while it is armed: it execs the command it was armed with, named after it in ps', async () => {
    const dir = await tmpdir('hw-');
    const mark = path.join(dir, 'orphaned');
    const argv = ['/bin/sh', '-c', 'echo "$1 $2" > "$0"', mark, 'reclaim-main.js', '4242'];
    const helperPid = await ownerDies(argv, false);
    expect(await until(() => spawnSync('cat', [mark]).stdout.toString() === 'reclaim-main.js 4242\n')).toBe(true);
    expect(helperPid).toBeGreaterThan(0);
  });

  test('disarmed first: its owner killed, it just exits', async () => {
    const dir = await tmpdir('hw-');
    const mark = path.join(dir, 'orphaned');
    const helperPid = await ownerDies(['/bin/sh', '-c', 'echo x > "$0"', mark], true);
    expect(await until(() => gone(helperPid))).toBe(true);
    await expect(fsp.access(mark)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test('armed, then closed (an owner that ends normally): it exits without running the command', async () => {
    const dir = await tmpdir('hw-');
    const mark = path.join(dir, 'orphaned');
    const h = new SyscallHelper();
    await h.onOrphaned(['/bin/sh', '-c', 'echo x > "$0"', mark]);
    const pid = pidOfHelper(h);
    h.close();
    expect(await until(() => gone(pid))).toBe(true);
    await expect(fsp.access(mark)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test('armed, its name in ps ends with the last three arguments (how an operator, or a test, finds the watchdog of a pid)', async () => {
    const h = new SyscallHelper();
    try {
      await h.onOrphaned(['/bin/sh', '-c', 'exit 0', '/x/reclaim-main.js', '/store', '777']);
      const pid = pidOfHelper(h);
      expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '')).toBe('hoist-helper /x/reclaim-main.js /store 777');
    } finally {
      h.close();
    }
  });
});

/** The helper's children (ps), as pids. */
function childrenOf(pid: number): number[] {
  return spawnSync('ps', ['-o', 'pid=', '--ppid', String(pid)]).stdout.toString().split('\n').filter(Boolean).map(Number);
}

/** The pid a warmer wrote into `file` (it writes "<pid>\n" at offset 0), once it has. */
async function writerOf(file: string): Promise<number> {
  let pid = 0;
  await until(() => (pid = Number(readFileSync(file, 'utf8').trim()) || 0) > 0);
  return pid;
}

// op K, on a plain file standing in for cgroup.procs (what it writes there is observable; the
// builder's cgroup-warm test runs it on a real one)
describe('SyscallHelper.warmCgroupLock', () => {
  test('a child of the helper writes its own pid to the file, again and again; another call extends it; it stops by itself', async () => {
    const h = new SyscallHelper();
    try {
      const file = path.join(await tmpdir('hk-'), 'procs');
      await fsp.writeFile(file, '');
      await h.warmCgroupLock(file);
      const warmer = await writerOf(file);
      const helper = pidOfHelper(h);
      expect(childrenOf(helper)).toEqual([warmer]);
      await h.warmCgroupLock(file);
      await fsp.writeFile(file, '');
      expect(await writerOf(file)).toBe(warmer);
      expect(childrenOf(helper)).toEqual([warmer]);
      expect(await until(() => gone(warmer))).toBe(true);
    } finally {
      h.close();
    }
  });

  test('a write that fails ends it at once, and so does the helper closing', async () => {
    const h = new SyscallHelper();
    const dir = await tmpdir('hk-');
    try {
      await h.warmCgroupLock(path.join(dir, 'missing'));
      const helper = pidOfHelper(h);
      expect(await until(() => childrenOf(helper).every((p) => gone(p)))).toBe(true);
      const file = path.join(dir, 'procs');
      await fsp.writeFile(file, '');
      await h.warmCgroupLock(file);
      const warmer = await writerOf(file);
      h.close();
      expect(await until(() => gone(warmer))).toBe(true);
    } finally {
      h.close();
    }
  });
});
