import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Ownership } from '@hoist/snapshotter';
import { FakedDaemon } from './faked.js';
import type { FakerootTools } from './fakeroot-guest.js';
import { ownersAfterRun, seedFakedDb } from './fakeroot-owners.js';

/** Where the RUN finds the fakeroot library (a private copy of the host's, bound by proot). */
export const GUEST_FAKEROOT_DIR = '/.hoist-fakeroot';

/** What a RUN under proot needs for fakeroot, and what to do after it. */
export interface FakerootRun {
  env: Record<string, string>;
  /** proot bindings `host:guest`. */
  binds: string[];
  /** The library's path as the RUN sees it (proot's own ld.so names it in a notice to drop). */
  guestLib?: string;
  /** Stop faked; if the RUN succeeded, write what it recorded back into the ownership record. */
  finish(ok: boolean): Promise<void>;
}

/**
 * Record the ownership a RUN (as root) gives files: proot -0 alone fakes chown without a trace.
 * The host's libfakeroot is preloaded into the RUN's programs (a copy, so that nothing the RUN
 * writes can reach the host's), its daemon is loaded with the record's owners by inode, and what
 * it saved afterwards goes back into the record by path. Statically linked programs bypass the
 * preload (proot -0 still fakes their chown, unrecorded).
 */
export async function prepareFakeroot(o: { tools: FakerootTools; rootfs: string; owners: Ownership; dir: string; tmpDir: string; env: Record<string, string | undefined> }): Promise<FakerootRun> {
  const libDir = path.join(o.dir, 'lib');
  await fsp.mkdir(libDir);
  const name = path.basename(o.tools.lib);
  await fsp.copyFile(o.tools.lib, path.join(libDir, name));
  await fsp.chmod(path.join(libDir, name), 0o444);
  const seed = await seedFakedDb(o.rootfs, o.owners);
  const daemon = await FakedDaemon.start({ faked: o.tools.faked, dir: o.dir, tmpDir: o.tmpDir, db: seed.db });
  await fsp.chmod(libDir, 0o555); // finish() makes it removable again
  const guestLib = `${GUEST_FAKEROOT_DIR}/${name}`;
  const theirs = o.env.LD_PRELOAD;
  return {
    env: { LD_PRELOAD: theirs ? `${guestLib}:${theirs}` : guestLib, FAKEROOTKEY: daemon.key, FAKEROOTDONTTRYCHOWN: '1' },
    binds: [`${libDir}:${GUEST_FAKEROOT_DIR}`],
    guestLib,
    finish: async (ok) => {
      await fsp.chmod(libDir, 0o755); // so that the temp dir can be removed
      if (!ok) return daemon.kill();
      const saved = await daemon.stop();
      const after = await ownersAfterRun(o.rootfs, seed, saved, o.owners);
      o.owners.assign(after);
    },
  };
}

/**
 * proot itself is a dynamic program started with the RUN's environment, so its own ld.so
 * cannot find the guest path of the library and says so once, first thing on stderr: drop that
 * line (only it), pass everything else on.
 */
export function withoutPreloadNotice(guestLib: string, sink: ((b: Buffer) => void) | undefined): { write(b: Buffer): void; end(): void } {
  let head: Buffer | undefined = Buffer.alloc(0);
  const notice = `ERROR: ld.so: object '${guestLib}' from LD_PRELOAD cannot be preloaded`;
  const flush = (): void => {
    if (head === undefined) return;
    let rest = head;
    head = undefined;
    const nl = rest.indexOf(10);
    if (nl >= 0 && rest.subarray(0, nl).toString().startsWith(notice)) rest = rest.subarray(nl + 1);
    if (rest.length > 0) sink?.(rest);
  };
  return {
    write(b) {
      if (head === undefined) return sink?.(b);
      head = Buffer.concat([head, b]);
      if (head.indexOf(10) >= 0 || head.length > 4096) flush();
    },
    end: flush,
  };
}
