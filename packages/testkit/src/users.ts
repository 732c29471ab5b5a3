import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { HOIST_BIN } from './hoist.js';
import { run } from './tools.js';

type RunResult = Awaited<ReturnType<typeof run>>;

/** A temporary unprivileged user for rootless tests (made by root with useradd, removed with its home). */
export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
  /** Its lines in /etc/subuid (empty without subordinate ids). */
  subuids: Array<{ start: number; count: number }>;
  /** Run a command as this user (setpriv), with HOME, USER and XDG_DATA_HOME of its own. */
  run(cmd: string, args: string[], opts?: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string }): Promise<RunResult>;
  /** Run the built hoist CLI as this user (no --root: its default store, $XDG_DATA_HOME/hoist). */
  hoist(args: string[], opts?: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string }): Promise<RunResult>;
  /** Start the built hoist CLI as this user and return the process (its pid is hoist's: setpriv and env exec). */
  spawnHoist(args: string[], opts?: { env?: NodeJS.ProcessEnv }): ChildProcessWithoutNullStreams;
  /** userdel -r: the user, its home and its /etc/subuid and /etc/subgid lines go. */
  remove(): Promise<void>;
}

async function must(cmd: string, args: string[]): Promise<RunResult> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.code}): ${r.stderr}`);
  return r;
}

async function subIdsOf(file: string, name: string): Promise<Array<{ start: number; count: number }>> {
  const text = await fsp.readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .map((l) => l.split(':'))
    .filter((f) => f[0] === name && f.length === 3)
    .map((f) => ({ start: Number(f[1]), count: Number(f[2]) }));
}

/**
 * Make a user. With `subids`, useradd allocates a free range of /etc/subuid and /etc/subgid
 * itself (SUB_UID_* of login.defs; it locks the files, which other tests share); without, the
 * user gets none (-K SUB_UID_COUNT=0). The files are only ever changed through
 * useradd/userdel, never rewritten by the test.
 */
export async function createTestUser(opts: { subids: boolean }): Promise<TestUser> {
  const name = `hoist${opts.subids ? 'r' : 's'}${randomBytes(4).toString('hex')}`;
  const noSub = opts.subids ? [] : ['-K', 'SUB_UID_COUNT=0', '-K', 'SUB_GID_COUNT=0'];
  await must('useradd', ['--create-home', '--shell', '/bin/sh', ...noSub, name]);
  const user = await describe(name);
  if (opts.subids && user.subuids.length === 0) {
    await fsp.rm(user.home, { recursive: true, force: true });
    await run('userdel', ['-r', name]);
    throw new Error('useradd allocated no /etc/subuid range (login.defs has no SUB_UID_COUNT)');
  }
  return user;
}

async function describe(name: string): Promise<TestUser> {
  const uid = Number((await must('id', ['-u', name])).stdout.trim());
  const gid = Number((await must('id', ['-g', name])).stdout.trim());
  const home = path.join('/home', name);
  const subuids = await subIdsOf('/etc/subuid', name);
  const env = (extra?: NodeJS.ProcessEnv): string[] => {
    const base: NodeJS.ProcessEnv = {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: home,
      USER: name,
      LOGNAME: name,
      XDG_DATA_HOME: path.join(home, '.local', 'share'),
      NO_COLOR: '1',
      ...extra,
    };
    return Object.entries(base).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
  };
  const argv = (cmd: string, args: string[], extra?: NodeJS.ProcessEnv): string[] => [`--reuid=${uid}`, `--regid=${gid}`, '--init-groups', '--', 'env', '-i', ...env(extra), cmd, ...args];
  const asUser = (cmd: string, args: string[], o: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {}): Promise<RunResult> =>
    run('setpriv', argv(cmd, args, o.env), { cwd: o.cwd ?? home, ...(o.input !== undefined ? { input: o.input } : {}) });
  return {
    name,
    uid,
    gid,
    home,
    subuids,
    run: asUser,
    hoist: (args, o) => asUser(process.execPath, [HOIST_BIN, ...args], o),
    spawnHoist: (args, o) => spawn('setpriv', argv(process.execPath, [HOIST_BIN, ...args], o?.env), { cwd: home, stdio: ['pipe', 'pipe', 'pipe'] }),
    remove: async () => {
      const r = await run('userdel', ['-r', name]);
      // "mail spool not found" is only a note; a user that still exists is a failure
      if ((await run('id', ['-u', name])).code === 0) throw new Error(`userdel ${name} failed: ${r.stderr}`);
    },
  };
}
