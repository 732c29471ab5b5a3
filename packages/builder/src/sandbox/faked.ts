import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { BuildError } from '../errors.js';
import { formatFakedDb, parseFakedDb, type FakedEntry } from './faked-db.js';
import { markProotGroup } from './proot-groups.js';

/**
 * fakeroot's daemon for one RUN: loaded with a database (`--load`), in the foreground, in a
 * process group of its own marked like proot's (killed by the watchdog if hoist dies), reached
 * by libfakeroot through SysV message queues under the key it prints. `stop` ends it with
 * SIGTERM, on which it saves its database (`--save-file`), and returns what it saved.
 */
export class FakedDaemon {
  private constructor(
    private readonly child: ChildProcess,
    readonly key: string,
    private readonly saveFile: string,
    private readonly unmark: () => Promise<void>,
  ) {}

  static async start(o: { faked: string; dir: string; tmpDir: string; db: readonly FakedEntry[] }): Promise<FakedDaemon> {
    const saveFile = path.join(o.dir, 'faked.db');
    const child = spawn(o.faked, ['--foreground', '--load', '--save-file', saveFile], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    const unmark = child.pid ? await markProotGroup(o.tmpDir, child.pid).catch(() => async () => undefined) : async () => undefined;
    try {
      const key = await readKey(child, o.faked, formatFakedDb(o.db));
      return new FakedDaemon(child, key, saveFile, unmark);
    } catch (e) {
      child.kill('SIGKILL');
      await unmark();
      throw e;
    }
  }

  async stop(): Promise<FakedEntry[]> {
    const exited = this.child.exitCode !== null || this.child.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.kill('SIGTERM');
    await exited;
    await this.unmark();
    const text = await fsp.readFile(this.saveFile, 'utf8').catch(() => {
      throw new BuildError('RUNTIME_FAILED', `fakeroot's daemon (${this.child.spawnfile}) saved no database: the owners this RUN gave files are lost`);
    });
    return parseFakedDb(text);
  }

  /** On error paths: end it without reading anything. */
  kill(): void {
    this.child.kill('SIGKILL');
    void this.unmark();
  }
}

/** Feed the database on stdin, then wait for the `key:pid` line faked prints once it listens. */
function readKey(child: ChildProcess, faked: string, db: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^(\d+):\d+\n/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => reject(new BuildError('RUNTIME_FAILED', `could not start fakeroot's daemon (${faked}): ${e.message}`, { cause: e })));
    child.on('exit', (code) => reject(new BuildError('RUNTIME_FAILED', `fakeroot's daemon (${faked}) exited (${code}) before it listened: ${err.trim() || out.trim()}`)));
    child.stdin!.end(db);
  });
}
