import { readFileSync } from 'node:fs';
import { allCurrentCapabilities, DEFAULT_CAPABILITIES, MASKED_PATHS, READONLY_PATHS } from './capabilities.js';
import { seccompFor, type OciSeccomp, type SeccompSetting } from './seccomp.js';
import { emulatedSpec, type PrivateEmulation } from './emulation-spec.js';

export interface SandboxMount {
  destination: string;
  type: 'bind' | 'tmpfs';
  source: string;
  options: string[];
}

/** What a RUN step (or `hoist run`) asks of the sandbox. */
export interface SandboxProcess {
  args: string[];
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  additionalGids?: number[];
  terminal?: boolean;
}

export interface SandboxOptions {
  rootfs: string;
  process: SandboxProcess;
  hostname: string;
  /** The host's namespace, a new empty one, or one prepared by network.ts (joined by path). */
  network: 'host' | 'none' | { netns: string };
  /** Host files bind-mounted read-only at /etc/hosts and /etc/resolv.conf. */
  hostsFile: string;
  resolvConf: string;
  mounts?: SandboxMount[];
  resources?: { memoryBytes?: number; cpus?: number; pidsLimit?: number };
  cgroupsPath?: string;
  /** Insecure RUNs (`--security=insecure`) get all capabilities, no masked paths and no seccomp filter. */
  privileged?: boolean;
  /** The seccomp filter (default: Docker's default profile; ignored when privileged). */
  seccomp?: SeccompSetting;
  /**
   * `seccomp` compiled ahead for DEFAULT_CAPABILITIES (seccompFor; `filter` undefined when
   * unconfined), used instead of compiling it here when not privileged: it is the same for
   * every RUN of a build, and compiling it cold takes a millisecond or two.
   */
  compiledSeccomp?: { filter: OciSeccomp | undefined };
  /** Run a foreign-architecture step through a private binfmt_misc instance (emulation.ts). */
  emulation?: PrivateEmulation;
  /** Size of /dev/shm in bytes (default 64 MiB, as Docker). */
  shmSizeBytes?: number;
  /** rlimits (`--ulimit`); RLIMIT_NOFILE defaults to Docker's 1048576 unless given here. */
  rlimits?: Array<{ type: string; soft: number; hard: number }>;
}


/** An OCI runtime spec (config.json) for one sandboxed process, as Docker would configure it. */
export function generateSpec(o: SandboxOptions): Record<string, unknown> {
  const caps = o.privileged ? allCurrentCapabilities() : [...DEFAULT_CAPABILITIES];
  const namespaces: Array<{ type: string; path?: string }> = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
  if (o.network === 'none') namespaces.push({ type: 'network' });
  else if (o.network !== 'host') namespaces.push({ type: 'network', path: o.network.netns });
  const mounts: SandboxMount[] = [
    { destination: '/proc', type: 'proc' as 'bind', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts' as 'bind', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${shmSize(o)}`] },
    { destination: '/dev/mqueue', type: 'mqueue' as 'bind', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs' as 'bind', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/etc/hosts', type: 'bind', source: o.hostsFile, options: ['rbind', 'ro', 'nosuid', 'nodev'] },
    { destination: '/etc/resolv.conf', type: 'bind', source: o.resolvConf, options: ['rbind', 'ro', 'nosuid', 'nodev'] },
  ];
  if (o.network === 'host') {
    // host network namespace: /sys must come from the host's netns view, read-only bind like Docker
    mounts[5] = { destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] };
  }
  // the sandbox's own cgroups (read-only), not the host's tree that /sys would show
  mounts.push({ destination: '/sys/fs/cgroup', type: 'cgroup' as 'bind', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] });
  mounts.push(...(o.mounts ?? []));
  const linux: Record<string, unknown> = {
    namespaces,
    maskedPaths: o.privileged ? [] : [...MASKED_PATHS],
    readonlyPaths: o.privileged ? [] : [...READONLY_PATHS],
    resources: resources(o),
  };
  if (o.cgroupsPath) linux.cgroupsPath = o.cgroupsPath;
  const seccomp = o.privileged ? undefined : o.compiledSeccomp ? o.compiledSeccomp.filter : seccompFor(o.seccomp, caps);
  if (seccomp) linux.seccomp = seccomp;
  const spec = {
    ociVersion: '1.0.2',
    process: {
      terminal: o.process.terminal ?? false,
      user: { uid: o.process.uid, gid: o.process.gid, additionalGids: o.process.additionalGids ?? [] },
      args: o.process.args,
      env: o.process.env,
      cwd: o.process.cwd,
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      rlimits: rlimits(o),
      noNewPrivileges: !o.privileged,
    },
    root: { path: o.rootfs, readonly: false },
    hostname: o.hostname,
    mounts,
    linux,
  };
  return o.emulation ? emulatedSpec(spec, o.emulation) : spec;
}

function resources(o: SandboxOptions): Record<string, unknown> {
  const r: Record<string, unknown> = {
    devices: [
      { allow: false, access: 'rwm' },
      ...[
        [1, 3], [1, 5], [1, 7], [1, 8], [1, 9], [5, 0], [5, 1], [5, 2], [136, -1],
      ].map(([major, minor]) => ({ allow: true, type: 'c', major, ...(minor! >= 0 ? { minor } : {}), access: 'rwm' })),
    ],
  };
  const res = o.resources;
  if (res?.memoryBytes) r.memory = { limit: res.memoryBytes };
  if (res?.cpus) r.cpu = { quota: Math.round(res.cpus * 100_000), period: 100_000 };
  if (res?.pidsLimit) r.pids = { limit: res.pidsLimit };
  return r;
}

/** /dev/shm's tmpfs size option: Docker's 64 MiB unless `--shm-size` says otherwise. */
function shmSize(o: SandboxOptions): string {
  return o.shmSizeBytes ? String(o.shmSizeBytes) : '65536k';
}

/** The RUN's rlimits: the requested ones, and RLIMIT_NOFILE as Docker sets it unless requested. */
function rlimits(o: SandboxOptions): Array<{ type: string; hard: number; soft: number }> {
  const out = (o.rlimits ?? []).map((r) => ({ type: r.type, hard: r.hard, soft: r.soft }));
  if (!out.some((r) => r.type === 'RLIMIT_NOFILE')) {
    const n = nofile();
    out.unshift({ type: 'RLIMIT_NOFILE', hard: n, soft: n });
  }
  return out;
}

/** Docker gives containers 1048576 open files; never more than this process may grant. */
function nofile(): number {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const hard = line?.trim().split(/\s+/)[4];
    if (hard && hard !== 'unlimited') return Math.min(1048576, Number(hard));
  } catch {
    // fall through
  }
  return 1048576;
}
