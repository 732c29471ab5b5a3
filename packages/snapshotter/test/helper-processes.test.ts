// The syscall helper's processes: the network it starts in the background (holder + slirp, here
// stand-ins made of sh, so that the order of events can be held at will) and the watchdog it
// becomes when its owner dies without disarming it.
import { spawn, spawnSync } from 'node:child_process';
import { promises as fsp, readFileSync } from 'node:fs';
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

/** Wait for `cond` (polled; `limitMs` only bounds a failing test). */
async function until(cond: () => boolean, limitMs = 10_000): Promise<boolean> {
  for (const end = Date.now() + limitMs; Date.now() < end; await new Promise((r) => setTimeout(r, 20))) if (cond()) return true;
  return cond();
}

/** A slirp stand-in: writes its pid argument to `file`, reports ready on fd 3, lives until fd 4 ends. */
function fakeSlirp(file: string): string[] {
  return ['/bin/sh', '-c', 'echo "$1" > "$0"; echo $$ >> "$0"; echo 1 >&3; exec cat <&4 >/dev/null', file, '%PID%'];
}

/** A holder stand-in: ready once `gate` (a FIFO) has been opened and closed by a writer, then holds until its stdin ends. */
function gatedHolder(gate: string): string[] {
  return ['/bin/sh', '-c', 'cat "$0" >/dev/null; echo ready; exec cat >/dev/null', gate];
}

describe('SyscallHelper.netns', () => {
  const h = new SyscallHelper();
  afterAll(() => h.close());

  test('starts in the background: calls made while it comes up are answered first; the slirp gets the holder pid; close ends both', async () => {
    const dir = await tmpdir('hn-');
    const gate = path.join(dir, 'gate');
    expect(spawnSync('mkfifo', [gate]).status).toBe(0);
    const seen = path.join(dir, 'slirp-saw');
    const events: string[] = [];
    const net = h.netns({ holder: gatedHolder(gate), slirp: fakeSlirp(seen), timeoutSec: 60 }).then((n) => {
      events.push('network up');
      return n;
    });
    await h.xattrsTree(dir);
    events.push('xattrs answered');
    await (await fsp.open(gate, 'w')).close();
    const { id, pid } = await net;
    expect(events).toEqual(['xattrs answered', 'network up']);
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]).toBe('cat');
    const [arg, slirpPid] = readFileSync(seen, 'utf8').trim().split('\n').map(Number);
    expect(arg).toBe(pid);
    expect(alive(slirpPid!)).toBe(true);
    await h.closeNetns(id);
    expect(await until(() => !alive(pid) && !alive(slirpPid!))).toBe(true);
  });

  test('networks are independent: closing one leaves the other up', async () => {
    const dir = await tmpdir('hn-');
    const hold = ['/bin/sh', '-c', 'echo ready; exec cat >/dev/null'];
    const a = await h.netns({ holder: hold, slirp: fakeSlirp(path.join(dir, 'a')), timeoutSec: 60 });
    const b = await h.netns({ holder: hold, slirp: fakeSlirp(path.join(dir, 'b')), timeoutSec: 60 });
    await h.closeNetns(a.id);
    expect(await until(() => !alive(a.pid))).toBe(true);
    expect(alive(b.pid)).toBe(true);
    await h.closeNetns(b.id);
    expect(await until(() => !alive(b.pid))).toBe(true);
  });

  test('a holder or slirp that exits, or a holder that never gets ready, is reported with its stderr', async () => {
    const dir = await tmpdir('hn-');
    const ok = ['/bin/sh', '-c', 'echo ready; exec cat >/dev/null'];
    const holderDies = h.netns({ holder: ['/bin/sh', '-c', 'echo no lo here >&2; exit 3'], slirp: fakeSlirp(path.join(dir, 's')), timeoutSec: 60 });
    await expect(holderDies).rejects.toEqual(new NetnsFailure('holder', 'exit', 3, 'no lo here\n'));
    const slirpDies = h.netns({ holder: ok, slirp: ['/bin/sh', '-c', 'echo no tap >&2; exit 4'], timeoutSec: 60 });
    await expect(slirpDies).rejects.toMatchObject({ which: 'slirp', kind: 'exit', code: 4, stderr: 'no tap\n' });
    const never = h.netns({ holder: ['/bin/sh', '-c', 'echo stuck >&2; exec sleep 60'], slirp: fakeSlirp(path.join(dir, 't')), timeoutSec: 1 });
    await expect(never).rejects.toMatchObject({ which: 'holder', kind: 'timeout', stderr: 'stuck\n' });
    // and the helper goes on serving
    await expect(h.xattrsTree(dir)).resolves.toBeInstanceOf(Map);
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
    const pid = (h as unknown as { proc: { pid: number } }).proc.pid;
    h.close();
    expect(await until(() => gone(pid))).toBe(true);
    await expect(fsp.access(mark)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test('armed, its name in ps ends with the last three arguments (how an operator, or a test, finds the watchdog of a pid)', async () => {
    const h = new SyscallHelper();
    try {
      await h.onOrphaned(['/bin/sh', '-c', 'exit 0', '/x/reclaim-main.js', '/store', '777']);
      const pid = (h as unknown as { proc: { pid: number } }).proc.pid;
      expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '')).toBe('hoist-helper /x/reclaim-main.js /store 777');
    } finally {
      h.close();
    }
  });
});
