/**
 * Running foreign-architecture programs in RUN steps (QEMU user emulation), with no host setup.
 *
 * When the host has an enabled binfmt_misc handler with the `F` flag for the target (e.g.
 * registered by `update-binfmts` or tonistiigi/binfmt), the kernel emulates every execve in
 * the sandbox by itself: nothing to do. Otherwise the sandbox gets a user namespace of its own
 * (identity-mapped, so files keep their owners), and in it a *private* binfmt_misc instance
 * (Linux >= 6.7 gives each user namespace its own) where the step registers Debian's static
 * QEMU with the `F` flag (the kernel opens the emulator at registration, so it need not exist
 * in the image). Every execve of the step, also of processes the command starts (`sh -c 'a | b'`,
 * apt's dpkg and maintainer scripts), is then emulated by the kernel, and nothing on the host
 * changes. Why not start the command through qemu directly: Debian's QEMU does not follow
 * execve, so the first child would fail with "Exec format error".
 */
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import * as path from 'node:path';
import { hostPlatform, type Platform } from '@hoist/oci';
import { BuildError } from '../errors.js';

/** OCI architecture -> QEMU's name for it (binary `qemu-<name>-static`, binfmt entry `qemu-<name>`). */
const QEMU_NAMES: Record<string, string> = {
  amd64: 'x86_64',
  arm64: 'aarch64',
  arm: 'arm',
  '386': 'i386',
  ppc64le: 'ppc64le',
  ppc64: 'ppc64',
  s390x: 's390x',
  riscv64: 'riscv64',
  mips64le: 'mips64el',
  mips64: 'mips64',
  mipsle: 'mipsel',
  mips: 'mips',
  loong64: 'loongarch64',
};

/** How a RUN on some platform executes here. */
export type Emulation =
  | { kind: 'native' }
  /** The host's binfmt_misc handler emulates (registered with `F`). */
  | { kind: 'host-binfmt'; entry: string }
  /** A binfmt_misc instance private to the sandbox's user namespace (see above). */
  | { kind: 'private-binfmt'; emulator: string; target: string; register: string; helper: string };

/** Where the host's facts come from (overridable in tests). */
export interface EmulationHost {
  platform: Platform;
  /** Directories searched for `qemu-<arch>-static`. */
  emulatorDirs: string[];
  /** The host's binfmt_misc mount (its entries are files named after the handler). */
  binfmtDir: string;
  /** Where Debian's qemu-user-static puts its binfmt descriptions (`qemu-<arch>.conf`). */
  binfmtConfDir: string;
  /** A static host-architecture shell that registers the handler in the sandbox. */
  helper: string;
  kernelRelease: string;
}

export function defaultEmulationHost(): EmulationHost {
  return {
    platform: hostPlatform(),
    emulatorDirs: ['/usr/bin', '/usr/local/bin', ...(process.env.PATH ?? '').split(':').filter((d) => d !== '')],
    binfmtDir: '/proc/sys/fs/binfmt_misc',
    binfmtConfDir: '/usr/lib/binfmt.d',
    helper: '/bin/busybox',
    kernelRelease: release(),
  };
}

const FIX = 'install the emulator with: apt-get install qemu-user-static';

/** Architectures this host runs natively (x86-64 kernels run i386 programs). */
function nativeArchs(host: Platform): string[] {
  return host.architecture === 'amd64' ? ['amd64', '386'] : [host.architecture];
}

/**
 * How RUN steps for `p` execute on this host; a platform that cannot run here throws
 * PLATFORM_UNSUPPORTED naming the platform and the fix (never a wrong-architecture image).
 */
export function emulationFor(p: Platform, host: EmulationHost = defaultEmulationHost()): Emulation {
  const name = `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
  if (p.os !== 'linux') throw new BuildError('PLATFORM_UNSUPPORTED', `cannot build for ${name}: only linux platforms can run here`);
  if (nativeArchs(host.platform).includes(p.architecture)) return { kind: 'native' };
  const q = QEMU_NAMES[p.architecture];
  if (!q) throw new BuildError('PLATFORM_UNSUPPORTED', `cannot build for ${name}: unknown architecture "${p.architecture}" (known: ${Object.keys(QEMU_NAMES).join(', ')})`);
  const entry = hostHandler(host.binfmtDir, q);
  if (entry) return { kind: 'host-binfmt', entry };
  const emulator = host.emulatorDirs.map((d) => path.join(d, `qemu-${q}-static`)).find((f) => existsSync(f));
  const conf = path.join(host.binfmtConfDir, `qemu-${q}.conf`);
  const hostName = `${host.platform.os}/${host.platform.architecture}`;
  if (!emulator || !existsSync(conf)) {
    throw new BuildError('PLATFORM_UNSUPPORTED', `cannot build for ${name}: this ${hostName} host cannot run ${p.architecture} programs and has no emulator (qemu-${q}-static) or binfmt handler for it; ${FIX}`);
  }
  if (!kernelAtLeast(host.kernelRelease, 6, 7)) {
    throw new BuildError('PLATFORM_UNSUPPORTED', `cannot build for ${name}: no binfmt_misc handler for ${q} is registered and this kernel (${host.kernelRelease}) is older than 6.7, which hoist needs to register one privately; register it on the host with: apt-get install binfmt-support qemu-user-static`);
  }
  if (!existsSync(host.helper)) throw new BuildError('PLATFORM_UNSUPPORTED', `cannot build for ${name}: ${host.helper} is missing; install it with: apt-get install busybox-static`);
  return { kind: 'private-binfmt', emulator, target: sandboxEmulator(q), register: registration(readFileSync(conf, 'utf8'), q), helper: host.helper };
}

/** The host's handler for `qemu-<q>` when it is enabled and opens the emulator at registration (`F`). */
function hostHandler(binfmtDir: string, q: string): string | undefined {
  const f = path.join(binfmtDir, `qemu-${q}`);
  try {
    const text = readFileSync(f, 'utf8');
    const enabled = text.split('\n')[0] === 'enabled';
    const flags = /^flags:\s*(\S*)/m.exec(text)?.[1] ?? '';
    return enabled && flags.includes('F') ? f : undefined;
  } catch {
    return undefined;
  }
}

/** Where the register file and the host shell are inside the sandbox (under /dev, a tmpfs: never in a layer). */
export const SANDBOX_BINFMT = '/dev/.hoist/binfmt';
/** Named `busybox` so that busybox takes its first argument as the applet. */
export const SANDBOX_HELPER = '/dev/.hoist/busybox';

/**
 * Where the emulator is inside the sandbox. Debian's QEMU keeps the program's own argv[0]
 * (binfmt flag `P`, which busybox applets and `exec -a` need) only when it is started under a
 * name ending in `-binfmt-P`, as Debian's own registration does.
 */
export function sandboxEmulator(q: string): string {
  return `/dev/.hoist/${q}-binfmt-P`;
}

/**
 * The line written to the private instance's `register`: Debian's magic, mask and flags for the
 * architecture (from its binfmt.d file), our emulator path inside the sandbox, and flag `F`
 * (the kernel opens the emulator now, so it need not be in the image).
 */
export function registration(confText: string, q: string): string {
  const line = confText.split('\n').find((l) => l.startsWith(':'));
  const fields = line?.split(':') ?? [];
  // :name:type:offset:magic:mask:interpreter:flags
  const [, , type, offset, magic, mask, interpreter, flags] = fields;
  if (type !== 'M' || !magic) throw new BuildError('PLATFORM_UNSUPPORTED', `the binfmt description for qemu-${q} is not a magic (M) entry: ${line ?? '(empty)'}`);
  // keep P only where the emulator was meant to get it (Debian's -binfmt-P name); never C
  const keep = [...(flags ?? '')].filter((f) => f === 'O' || (f === 'P' && (interpreter ?? '').endsWith('-binfmt-P')));
  return `:hoist-${q}:M:${offset ?? ''}:${magic}:${mask ?? ''}:${sandboxEmulator(q)}:${[...new Set([...keep, 'F'])].join('')}`;
}

function kernelAtLeast(rel: string, major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(rel);
  if (!m) return false;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a > major || (a === major && b >= minor);
}
