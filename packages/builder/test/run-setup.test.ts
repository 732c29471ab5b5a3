// The work of a RUN between its root's mount and the runtime's start, and after the runtime:
// mount-point checks made once per path (as strict as before), side work awaited before the
// step ends, the bundle's removal handed to the caller, the seccomp filter compiled ahead.
// Counts, order and content, never time.
import { promises as fsp, type Stats } from 'node:fs';
import { jest } from '@jest/globals';
import * as path from 'node:path';
import { BuildError, DEFAULT_CAPABILITIES, generateSpec, runInSandbox } from '@hoist/builder';
import { fakeSandbox } from './helpers/sandbox.js';
import { tempDir } from '@hoist/testkit';
import { lstatOnce, type Lstat } from '../src/rootfs.js';
import { missingPaths } from '../src/run-mounts.js';
import { Pending, withPending } from '../src/pending.js';
import { prepareRoot } from '../src/run-exec.js';
import { seccompFor, type SeccompProfile } from '../src/sandbox/seccomp.js';

const SANDBOX_TARGETS = ['/etc/hosts', '/etc/resolv.conf', '/proc', '/sys', '/dev'];

const everyTime: Lstat = (p) => fsp.lstat(p).catch((): Stats | undefined => undefined);

/** A root whose /etc/hosts and /etc/resolv.conf are symlinks out of it, /proc a symlink to a missing dir, no /sys. */
async function hostileRoot(): Promise<{ root: string; outside: string }> {
  const base = await tempDir('run-setup-');
  const root = path.join(base, 'root');
  const outside = path.join(base, 'outside');
  await fsp.mkdir(path.join(root, 'etc'), { recursive: true });
  await fsp.mkdir(path.join(root, 'dev'));
  await fsp.mkdir(outside);
  await fsp.writeFile(path.join(outside, 'hosts'), 'host file\n');
  await fsp.symlink(path.join(outside, 'hosts'), path.join(root, 'etc', 'hosts'));
  await fsp.symlink('../../outside/resolv.conf', path.join(root, 'etc', 'resolv.conf'));
  await fsp.symlink('/nowhere/proc', path.join(root, 'proc'));
  return { root, outside };
}

const outsideOf = (root: string): string => path.join(path.dirname(root), 'outside');

describe('mount points of a RUN: each path lstat-ed once, as strict as before', () => {
  test('the sandbox targets checked side by side with one lstat per path find what checking each alone finds', async () => {
    const { root } = await hostileRoot();
    const alone = [];
    for (const t of SANDBOX_TARGETS) alone.push(...(await missingPaths(root, t, everyTime)));
    const lstat = lstatOnce();
    const shared = (await Promise.all(SANDBOX_TARGETS.map((t) => missingPaths(root, t, lstat)))).flat();
    expect(shared).toEqual(alone);
    // the symlinks out of the root are re-rooted: every path to create or remove is inside it
    for (const c of shared) expect(c.abs.startsWith(root + path.sep)).toBe(true);
    // the first missing component of each: the re-rooted symlink targets, and /sys
    expect(shared.map((c) => path.relative(root, c.abs))).toEqual([path.join(path.relative('/', outsideOf(root)), 'hosts'), 'outside/resolv.conf', 'nowhere/proc', 'sys']);
  });

  test('a symlinked /etc/hosts is resolved inside the root, however often its answer is reused', async () => {
    const { root, outside } = await hostileRoot();
    const lstat = lstatOnce();
    const first = await missingPaths(root, '/etc/hosts', lstat);
    const again = await missingPaths(root, '/etc/hosts', lstat);
    expect(again).toEqual(first);
    expect(first).toHaveLength(1);
    expect(first[0]!.target).toBe(path.join(root, outside, 'hosts'));
    expect(first[0]!.target.startsWith(root + path.sep)).toBe(true);
    // the host's file was never the answer
    expect(first.some((c) => c.abs.startsWith(outside) || c.target.startsWith(outside))).toBe(false);
  });

  test('one lstat per path for the five targets (checked each alone, /etc was lstat-ed again and again)', async () => {
    const { root } = await hostileRoot();
    const spy = jest.spyOn(fsp, 'lstat');
    const perPath = (): Map<string, number> => {
      const m = new Map<string, number>();
      for (const [p] of spy.mock.calls) m.set(String(p), (m.get(String(p)) ?? 0) + 1);
      spy.mockClear();
      return m;
    };
    try {
      for (const t of SANDBOX_TARGETS) await missingPaths(root, t, everyTime);
      const alone = perPath();
      // counted through fs/promises (the default inner lstat is synchronous)
      const lstat = lstatOnce(everyTime);
      await Promise.all(SANDBOX_TARGETS.map((t) => missingPaths(root, t, lstat)));
      const shared = perPath();
      expect(alone.get(path.join(root, 'etc'))).toBeGreaterThanOrEqual(5);
      expect([...shared.keys()].sort()).toEqual([...alone.keys()].sort());
      expect([...shared.values()].every((n) => n === 1)).toBe(true);
    } finally {
      spy.mockRestore();
    }
  });
});

describe('Pending: side work ends before its owner', () => {
  test('withPending returns only after the work taken in has ended', async () => {
    const order: string[] = [];
    const r = await withPending(async (p) => {
      p.add(new Promise((resolve) => setTimeout(resolve, 20)).then(() => void order.push('side')));
      order.push('body');
      return 7;
    });
    order.push('returned');
    expect(r).toBe(7);
    expect(order).toEqual(['body', 'side', 'returned']);
  });

  test("a failed piece of side work fails the owner; the owner's own error wins over it", async () => {
    const side = new BuildError('RUNTIME_FAILED', 'side');
    await expect(withPending(async (p) => p.add(Promise.reject(side)))).rejects.toBe(side);
    const own = new BuildError('STEP_FAILED', 'own');
    await expect(
      withPending(async (p) => {
        p.add(Promise.reject(side));
        throw own;
      }),
    ).rejects.toBe(own);
  });

  test('a piece that fails before settle is not an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const on = (e: unknown): void => void unhandled.push(e);
    process.on('unhandledRejection', on);
    try {
      const p = new Pending();
      p.add(Promise.reject(new Error('early')));
      await new Promise((r) => setTimeout(r, 10));
      expect(p.size).toBe(1);
      await expect(p.settle()).rejects.toThrow('early');
    } finally {
      process.off('unhandledRejection', on);
    }
    expect(unhandled).toEqual([]);
  });
});

describe('prepareRoot: user and working directory side by side', () => {
  test('the user comes from the root; the working directory is made', async () => {
    const root = path.join(await tempDir('run-setup-'), 'root');
    await fsp.mkdir(path.join(root, 'etc'), { recursive: true });
    await fsp.writeFile(path.join(root, 'etc', 'passwd'), 'root:x:0:0::/root:/bin/sh\napp:x:42:43::/home/app:/bin/sh\n');
    await fsp.writeFile(path.join(root, 'etc', 'group'), 'app:x:43:\nextra:x:44:app\n');
    const u = await prepareRoot(root, { User: 'app', WorkingDir: '/srv/app' });
    expect(u).toEqual({ uid: 42, gid: 43, additionalGids: [43, 44], home: '/home/app', name: 'app' });
    expect((await fsp.stat(path.join(root, 'srv', 'app'))).isDirectory()).toBe(true);
  });

  test('when both fail, the unknown user is what is reported (as when it was checked first)', async () => {
    const root = path.join(await tempDir('run-setup-'), 'root');
    await fsp.mkdir(root, { recursive: true });
    await fsp.writeFile(path.join(root, 'file'), 'not a directory');
    const e = await prepareRoot(root, { User: 'nobody-here', WorkingDir: '/file/sub' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BuildError);
    expect((e as BuildError).code).toBe('USER_NOT_FOUND');
    const w = await prepareRoot(root, { WorkingDir: '/file/sub' }).catch((x: unknown) => x);
    expect((w as NodeJS.ErrnoException).code).toBe('ENOTDIR');
  });
});

/** A fake runtime that records the bundle's modes at `run`; fails to start when `bin` is missing. */
async function fakeRuntime(dir: string): Promise<{ bin: string; log: string }> {
  const bin = path.join(dir, 'runc');
  const log = path.join(dir, 'calls.log');
  // --root STATE run --bundle B ID
  const script = ['#!/bin/sh', `echo "$3 $(stat -c %a "$5") $(stat -c %a "$5/config.json")" >> '${log}'`, 'exit 0'].join('\n');
  await fsp.writeFile(bin, script + '\n', { mode: 0o755 });
  return { bin, log };
}

const SB = fakeSandbox(['SECRET=x']);

describe('runInSandbox: the bundle', () => {
  test('is private (0700, config.json 0600) while the runtime runs; its removal is handed to defer and leaves nothing', async () => {
    const dir = await tempDir('rt-');
    const { bin, log } = await fakeRuntime(dir);
    const bundles = path.join(dir, 'bundles');
    const deferred: Array<Promise<unknown>> = [];
    const r = await runInSandbox({ name: 'runc', path: bin }, SB, { stateDir: path.join(dir, 'state'), bundleParent: bundles, defer: (w) => deferred.push(w) });
    expect(r.exitCode).toBe(0);
    expect((await fsp.readFile(log, 'utf8')).trim()).toBe('run 700 600');
    expect(deferred).toHaveLength(1);
    await Promise.all(deferred);
    expect(await fsp.readdir(bundles)).toEqual([]);
  });

  test('a runtime that cannot start: RUNTIME_FAILED, and the bundle still goes (through defer)', async () => {
    const dir = await tempDir('rt-');
    const bundles = path.join(dir, 'bundles');
    const deferred: Array<Promise<unknown>> = [];
    const e = await runInSandbox({ name: 'runc', path: path.join(dir, 'absent') }, SB, { stateDir: path.join(dir, 'state'), bundleParent: bundles, defer: (w) => deferred.push(w) }).catch((x: unknown) => x);
    expect((e as BuildError).code).toBe('RUNTIME_FAILED');
    expect(deferred).toHaveLength(1);
    await Promise.all(deferred);
    expect(await fsp.readdir(bundles)).toEqual([]);
  });

  test('a bundle that cannot be written is reported as such, not as a runtime failure, and nothing is left', async () => {
    const dir = await tempDir('rt-');
    const notDir = path.join(dir, 'file');
    await fsp.writeFile(notDir, '');
    const deferred: Array<Promise<unknown>> = [];
    const e = await runInSandbox({ name: 'runc', path: '/bin/true' }, SB, { stateDir: path.join(dir, 'state'), bundleParent: notDir, defer: (w) => deferred.push(w) }).catch((x: unknown) => x);
    expect(e).not.toBeInstanceOf(BuildError);
    expect((e as NodeJS.ErrnoException).code).toBe('ENOTDIR');
    await Promise.all(deferred);
    expect(await fsp.readdir(dir)).toEqual(expect.not.arrayContaining(['bundles']));
  });
});

describe('the seccomp filter compiled ahead', () => {
  const linux = (spec: Record<string, unknown>): { seccomp?: unknown } => spec.linux as { seccomp?: unknown };

  test('is the filter generateSpec compiles itself, for the default profile, unconfined and a profile of its own', () => {
    const own: SeccompProfile = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', excludes: { caps: ['CAP_SYS_ADMIN'] } }] };
    for (const seccomp of [undefined, 'default', 'unconfined', own] as const) {
      const sb = { ...SB, ...(seccomp ? { seccomp } : {}) };
      const compiledSeccomp = { filter: seccompFor(seccomp, DEFAULT_CAPABILITIES) };
      expect(generateSpec({ ...sb, compiledSeccomp })).toEqual(generateSpec(sb));
    }
    expect(linux(generateSpec(SB)).seccomp).toBeDefined();
  });

  test('is what the spec carries, and is ignored by a privileged (insecure) RUN', () => {
    const filter = seccompFor('default', DEFAULT_CAPABILITIES)!;
    const marked = { ...filter, defaultErrnoRet: 99 };
    expect(linux(generateSpec({ ...SB, compiledSeccomp: { filter: marked } })).seccomp).toBe(marked);
    expect(linux(generateSpec({ ...SB, privileged: true, compiledSeccomp: { filter: marked } })).seccomp).toBeUndefined();
  });
});
