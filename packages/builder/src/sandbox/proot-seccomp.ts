import { existsSync } from 'node:fs';

/**
 * proot 5.1 (Debian 12's) translates the paths of the system calls it knows, and lets the
 * others through untranslated: statx, openat2, faccessat2, fchmodat2 and execveat reach the
 * HOST's files by path (measured: a RUN read and stat'ed the builder's files through them, and
 * fchmodat2 could change them). These calls are newer than proot 5.1, and every caller falls
 * back to the old ones on ENOSYS (glibc, coreutils, Rust's std), which proot translates. So
 * RUN under proot gets a seccomp filter that answers ENOSYS to them (and to the new mount API,
 * which takes paths too): installed by a few lines of Perl (perl-base is essential in Debian)
 * with prctl(PR_SET_NO_NEW_PRIVS) + prctl(PR_SET_SECCOMP), which exec proot — no privilege.
 */

interface ArchSyscalls {
  /** AUDIT_ARCH_* of seccomp_data.arch. */
  audit: number;
  /** Untranslated path calls for this ABI. */
  denied: number[];
}

const NEW_MOUNT_API = [428, 429, 430, 431, 432, 433, 442]; // open_tree, move_mount, fsopen, fsconfig, fsmount, fspick, mount_setattr
const COMMON = [437, 439, 452, ...NEW_MOUNT_API]; // openat2, faccessat2, fchmodat2: the same number on every ABI

/** Per host architecture: prctl's number, and the ABIs a RUN may use with their denied calls. */
const ARCHES: Record<string, { prctl: number; abis: ArchSyscalls[]; x32?: boolean }> = {
  x64: {
    prctl: 157,
    abis: [
      { audit: 0xc000003e, denied: [332, 322, ...COMMON] }, // x86_64: statx, execveat
      { audit: 0x40000003, denied: [383, 358, ...COMMON] }, // i386
    ],
    x32: true,
  },
  arm64: { prctl: 167, abis: [{ audit: 0xc00000b7, denied: [291, 281, ...COMMON] }] }, // aarch64: statx, execveat
};

const LD_ABS_W = 0x20;
const JEQ = 0x15;
const JGE = 0x35;
const RET = 0x06;
const RET_ALLOW = 0x7fff0000;
const RET_ENOSYS = 0x00050000 | 38;

function insn(code: number, jt: number, jf: number, k: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16LE(code, 0);
  b.writeUInt8(jt, 2);
  b.writeUInt8(jf, 3);
  b.writeUInt32LE(k >>> 0, 4);
  return b;
}

/** The instructions for one ABI: after `ld arch`, if it matches, test the number against the list. */
function abiBlock(a: ArchSyscalls, x32: boolean): Buffer[] {
  const tests: Buffer[] = [];
  if (x32) tests.push(insn(JGE, a.denied.length + 1, 0, 0x40000000)); // x32 ABI (bit 30): not for RUN
  a.denied.forEach((nr, i) => tests.push(insn(JEQ, a.denied.length - i, 0, nr)));
  tests.push(insn(RET, 0, 0, RET_ALLOW));
  tests.push(insn(RET, 0, 0, RET_ENOSYS));
  // arch matches: fall into the number tests; else skip this block
  return [insn(JEQ, 0, tests.length + 1, a.audit), insn(LD_ABS_W, 0, 0, 0), ...tests, insn(LD_ABS_W, 0, 0, 4)];
}

/** The classic-BPF program (struct sock_filter[]) for `arch` (process.arch), or undefined where unknown. */
export function prootSeccompFilter(arch: string = process.arch): Buffer | undefined {
  const a = ARCHES[arch];
  if (!a) return undefined;
  const parts: Buffer[] = [insn(LD_ABS_W, 0, 0, 4)];
  a.abis.forEach((abi, i) => parts.push(...abiBlock(abi, a.x32 === true && i === 0)));
  parts.push(insn(RET, 0, 0, RET_ALLOW)); // an ABI not listed: nothing of it is denied
  return Buffer.concat(parts);
}

/** Set no_new_privs, install the filter (hex in ARGV[1]), exec the rest of ARGV. */
const PERL = [
  'my ($prctl, $hex, @cmd) = @ARGV;',
  'my $f = pack("H*", $hex);',
  'syscall($prctl, 38, 1, 0, 0, 0) == 0 or die "hoist: prctl(PR_SET_NO_NEW_PRIVS): $!\\n";',
  'my $prog = pack("S x6 P", length($f) / 8, $f);',
  'syscall($prctl, 22, 2, $prog, 0, 0) == 0 or die "hoist: prctl(PR_SET_SECCOMP): $!\\n";',
  'exec { $cmd[0] } @cmd or die "hoist: exec $cmd[0]: $!\\n";',
].join(' ');

/**
 * The command that runs `bin args` under the filter, or undefined (with why) where it cannot
 * be installed: no perl, or a host architecture without a table here.
 */
export function withPathSyscallFilter(bin: string, args: string[], o: { arch?: string; perl?: string } = {}): { bin: string; args: string[] } | { refused: string } {
  const filter = prootSeccompFilter(o.arch);
  if (!filter) return { refused: `no system call table for ${o.arch ?? process.arch} here` };
  const perl = o.perl ?? ['/usr/bin/perl', '/bin/perl'].find((p) => existsSync(p));
  if (!perl) return { refused: 'perl is not installed (apt-get install perl-base)' };
  return { bin: perl, args: ['-e', PERL, String(ARCHES[o.arch ?? process.arch]!.prctl), filter.toString('hex'), bin, ...args] };
}
