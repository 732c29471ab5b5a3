import { promises as fsp } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { tempDir } from './temp.js';
import { run } from './tools.js';

type RunResult = Awaited<ReturnType<typeof run>>;

/** A runtime spec's `linux.seccomp` (as builder's seccompFor makes it). */
export interface PodSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures: string[];
  syscalls: Array<{ names: string[]; action: string; errnoRet?: number; args?: unknown[] }>;
}

/**
 * What a pod at Kubernetes' "baseline"/"restricted" level cannot do, denied by name (EPERM) on
 * top of the base profile: new namespaces (unshare, setns; clone's namespace flags are
 * already refused by the default profile without CAP_SYS_ADMIN, clone3 gets ENOSYS) and mounts.
 */
export const POD_DENIED_SYSCALLS = ['unshare', 'setns', 'mount', 'umount', 'umount2', 'pivot_root', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'move_mount', 'open_tree', 'mount_setattr'];

/** `base` with POD_DENIED_SYSCALLS removed from its allow rules and denied by a rule of their own. */
export function lockedDownSeccomp(base: PodSeccomp): PodSeccomp {
  const denied = new Set(POD_DENIED_SYSCALLS);
  const syscalls = base.syscalls.map((r) => ({ ...r, names: r.names.filter((n) => !denied.has(n)) })).filter((r) => r.names.length > 0);
  return { ...base, syscalls: [...syscalls, { names: [...POD_DENIED_SYSCALLS], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] };
}

export interface LockedPodOptions {
  /** The non-root user the pod runs as (runAsNonRoot). */
  uid: number;
  gid: number;
  /** A host directory owned by uid, the pod's writable home (mounted at /home/builder). */
  home: string;
  /** The seccomp filter (see lockedDownSeccomp). */
  seccomp: PodSeccomp;
  /** Host paths bound read-only at the same path (the built hoist, inputs). */
  readOnly: string[];
  env?: Record<string, string>;
  timeoutMs?: number;
}

/** The pod's file system: the host's /usr, /etc and merged-/usr links read-only, tmpfs /tmp, the home, /proc, /dev. */
function podMounts(o: LockedPodOptions): Array<Record<string, unknown>> {
  const ro = (p: string): Record<string, unknown> => ({ destination: p, type: 'bind', source: p, options: ['rbind', 'ro', 'nosuid', 'nodev'] });
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777'] },
    ...['/usr', '/etc', '/bin', '/sbin', '/lib', '/lib64'].map(ro),
    ...o.readOnly.map(ro),
    { destination: '/home/builder', type: 'bind', source: o.home, options: ['rbind', 'rw', 'nosuid', 'nodev'] },
  ];
}

/** The runtime spec of the pod: no capabilities, no_new_privs, the user, its own namespaces (network: loopback only). */
export function lockedPodSpec(args: string[], o: LockedPodOptions, rootfs: string): Record<string, unknown> {
  const env = { PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', HOME: '/home/builder', ...o.env };
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: o.uid, gid: o.gid, additionalGids: [] },
      args,
      env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      cwd: '/home/builder',
      capabilities: { bounding: [], effective: [], permitted: [], inheritable: [], ambient: [] },
      noNewPrivileges: true,
    },
    root: { path: rootfs, readonly: true },
    hostname: 'locked-pod',
    mounts: podMounts(o),
    linux: {
      namespaces: ['pid', 'ipc', 'uts', 'mount', 'network'].map((type) => ({ type })),
      maskedPaths: ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/sys/firmware'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
      seccomp: o.seccomp,
    },
  };
}

/**
 * Run `args` inside a runc container that imitates a locked-down Kubernetes pod: a non-root
 * user, no capabilities, no_new_privs, a seccomp filter that refuses namespaces and mounts, a
 * read-only root with the host's /usr and /etc, and a writable home. Runs as root on the host
 * (runc), removes the container and its bundle afterwards.
 */
export async function runInLockedPod(args: string[], o: LockedPodOptions): Promise<RunResult> {
  const bundle = await tempDir('locked-pod');
  const id = `hoist-pod-${randomBytes(6).toString('hex')}`;
  const state = path.join(bundle, 'state');
  try {
    await fsp.mkdir(path.join(bundle, 'rootfs'));
    await fsp.writeFile(path.join(bundle, 'config.json'), JSON.stringify(lockedPodSpec(args, o, path.join(bundle, 'rootfs'))));
    return await run('runc', ['--root', state, 'run', '--bundle', bundle, id], o.timeoutMs ? { timeoutMs: o.timeoutMs } : {});
  } finally {
    await run('runc', ['--root', state, 'delete', '--force', id]);
    await fsp.rm(bundle, { recursive: true, force: true });
  }
}
