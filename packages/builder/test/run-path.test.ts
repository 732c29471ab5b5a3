// The per-RUN work around the runtime: which runtime commands a RUN costs, and that finding the
// runtime need not block. A fake runtime (a shell script) logs every call it gets.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { BuildError, detectRuntimeAsync, runInSandbox } from '@hoist/builder';
import { fakeSandbox } from './helpers/sandbox.js';
import { tempDir } from '@hoist/testkit';

/** A fake OCI runtime: logs its arguments; `run` leaves its state dir behind when LEAVE_STATE is set. */
async function fakeRuntime(dir: string, opts: { leaveState?: boolean; versionFails?: boolean } = {}): Promise<{ bin: string; log: string }> {
  const bin = path.join(dir, 'runc');
  const log = path.join(dir, 'calls.log');
  const script = [
    '#!/bin/sh',
    `echo "$*" >> '${log}'`,
    `[ "$1" = --version ] && exit ${opts.versionFails ? 1 : 0}`,
    // --root STATE run --bundle B ID
    `if [ "$3" = run ]; then ${opts.leaveState ? 'mkdir -p "$2/$6"' : ':'}; exit 0; fi`,
    'if [ "$3" = delete ]; then rm -rf "$2/$5"; fi',
    'exit 0',
  ].join('\n');
  await fsp.writeFile(bin, script + '\n', { mode: 0o755 });
  return { bin, log };
}

const SB = fakeSandbox();

async function calls(log: string): Promise<string[]> {
  return (await fsp.readFile(log, 'utf8')).trim().split('\n').map((l) => l.split(' ')[2] ?? l);
}

describe('runInSandbox: runtime commands per RUN', () => {
  test('a run that ends normally costs one runtime command: `run` deleted its container, no `delete` follows', async () => {
    const dir = await tempDir('rt-');
    const { bin, log } = await fakeRuntime(dir);
    const state = path.join(dir, 'state');
    const r = await runInSandbox({ name: 'runc', path: bin }, SB, { stateDir: state, bundleParent: path.join(dir, 'bundles') });
    expect(r.exitCode).toBe(0);
    expect(await calls(log)).toEqual(['run']);
    expect(await fsp.readdir(path.join(dir, 'bundles'))).toEqual([]);
  });

  test('where the runtime left its state (killed, cancelled), `delete --force` removes the container', async () => {
    const dir = await tempDir('rt-');
    const { bin, log } = await fakeRuntime(dir, { leaveState: true });
    const state = path.join(dir, 'state');
    await runInSandbox({ name: 'runc', path: bin }, SB, { stateDir: state, bundleParent: path.join(dir, 'bundles') });
    expect(await calls(log)).toEqual(['run', 'delete']);
    expect(await fsp.readdir(state)).toEqual([]);
  });
});

describe('detectRuntimeAsync', () => {
  test('checks the runtime with one `--version` and finds the same runtime as detectRuntime', async () => {
    const dir = await tempDir('rt-');
    const { bin, log } = await fakeRuntime(dir);
    expect(await detectRuntimeAsync(bin)).toEqual({ name: 'runc', path: bin });
    expect(await fsp.readFile(log, 'utf8')).toBe('--version\n');
  });

  test('with a memo, a binary that passed is not checked again; a rewritten or replaced one is', async () => {
    const dir = await tempDir('rt-');
    const { bin, log } = await fakeRuntime(dir);
    const memo = { file: path.join(dir, 'store', 'runtime', 'checked'), tmpDir: path.join(dir, 'store', 'tmp') };
    expect(await detectRuntimeAsync(bin, memo)).toEqual({ name: 'runc', path: bin });
    expect(await detectRuntimeAsync(bin, memo)).toEqual({ name: 'runc', path: bin });
    expect(await fsp.readFile(log, 'utf8')).toBe('--version\n');
    // no temp file stays behind
    expect(await fsp.readdir(memo.tmpDir)).toEqual([]);
    // the same size and mtime, other content: the ctime moved, so it is checked again
    const st = await fsp.stat(bin);
    const text = await fsp.readFile(bin, 'utf8');
    const edited = text.replace('then :;', 'then  :');
    expect(edited.length === text.length && edited !== text).toBe(true);
    await fsp.writeFile(bin, edited);
    await fsp.utimes(bin, st.atime, st.mtime);
    expect(await detectRuntimeAsync(bin, memo)).toEqual({ name: 'runc', path: bin });
    expect(await fsp.readFile(log, 'utf8')).toBe('--version\n--version\n');
    // replaced by one whose check fails: refused, not taken from the memo
    await fsp.rm(bin);
    await fakeRuntime(dir, { versionFails: true });
    const e = await detectRuntimeAsync(bin, memo).catch((x: unknown) => x);
    expect((e as BuildError).code).toBe('RUNTIME_UNAVAILABLE');
  });

  test('a runtime whose --version fails is refused with RUNTIME_UNAVAILABLE, as before', async () => {
    const dir = await tempDir('rt-');
    const { bin } = await fakeRuntime(dir, { versionFails: true });
    const e = await detectRuntimeAsync(bin).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BuildError);
    expect((e as BuildError).code).toBe('RUNTIME_UNAVAILABLE');
  });
});
