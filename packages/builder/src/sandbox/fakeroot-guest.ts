import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { secureJoin } from '../rootfs.js';

/** The host's fakeroot (Debian package `fakeroot`): its preload library and daemon, SysV IPC flavour. */
export interface FakerootTools {
  lib: string;
  faked: string;
}

const LIB_DIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib/arm-linux-gnueabihf', '/usr/lib/riscv64-linux-gnu', '/usr/lib64', '/usr/lib'];

export function findFakeroot(): FakerootTools | undefined {
  const faked = ['/usr/bin/faked-sysv', '/usr/bin/faked'].find((f) => existsSync(f));
  const lib = LIB_DIRS.map((d) => path.join(d, 'libfakeroot', 'libfakeroot-sysv.so')).find((f) => existsSync(f));
  return faked && lib ? { lib, faked } : undefined;
}

/** Where an image keeps glibc's libc.so.6 (`<triplet>` is the host library's multiarch directory). */
function libcCandidates(triplet: string | undefined): string[] {
  const multi = triplet ? [`/lib/${triplet}/libc.so.6`, `/usr/lib/${triplet}/libc.so.6`] : [];
  return [...multi, '/lib64/libc.so.6', '/usr/lib64/libc.so.6', '/lib/libc.so.6', '/usr/lib/libc.so.6'];
}

const MAX_LIBC = 16 * 1024 * 1024;

/** ELF machine (e_machine, little-endian) of a file's first bytes, or undefined if not ELF. */
function elfMachine(head: Buffer): number | undefined {
  if (head.length < 20 || head.readUInt32BE(0) !== 0x7f454c46) return undefined;
  return head.readUInt16LE(18);
}

/** The glibc symbol versions a binary names (needed by a library, defined by libc.so.6). */
function glibcVersions(bytes: Buffer): Set<string> {
  return new Set(bytes.toString('latin1').match(/GLIBC_\d+(?:\.\d+)+/g) ?? []);
}

/**
 * Can the image at `rootfs` load the host's fakeroot library? Its glibc must be of the host
 * library's machine and define every glibc version the library needs (Debian 12's needs
 * GLIBC_2.34); a musl image (Alpine) or a static one has no glibc at all, and an older glibc
 * would make every dynamic program of the RUN fail to start ("version `GLIBC_2.34' not found").
 * Undefined if it can, else why not (for the warning).
 */
export async function guestRefusesLib(rootfs: string, lib: string): Promise<string | undefined> {
  const libBytes = await fsp.readFile(lib);
  const machine = elfMachine(libBytes);
  const needed = glibcVersions(libBytes);
  const triplet = /\/lib\/([^/]+-linux-gnu[^/]*)\//.exec(lib)?.[1];
  for (const c of libcCandidates(triplet)) {
    const p = await secureJoin(rootfs, c);
    const st = await fsp.stat(p).catch(() => undefined);
    if (!st?.isFile() || st.size > MAX_LIBC) continue;
    const bytes = await fsp.readFile(p);
    if (elfMachine(bytes) !== machine) return `its glibc (${c}) is for another machine than this host's fakeroot library`;
    const defined = glibcVersions(bytes);
    const missing = [...needed].filter((v) => !defined.has(v));
    if (missing.length > 0) return `its glibc (${c}) is older than this host's fakeroot library needs (${missing.join(', ')})`;
    return undefined;
  }
  return 'it has no glibc (a musl image such as Alpine, or static programs only), which the fakeroot library needs';
}
