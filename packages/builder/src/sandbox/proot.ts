import { BuildError } from '../errors.js';
import type { SandboxOptions } from './spec.js';

/** Where the host's pseudo file systems come from for a proot sandbox (they cannot be mounted without privileges). */
const HOST_BINDS = ['/proc', '/dev', '/sys'];

/**
 * What proot cannot give a RUN, named with the fix: a network namespace (RUN --network=none
 * or the sandbox network) and cgroup limits both need privileges a locked-down pod lacks.
 */
export function prootRefusal(sb: SandboxOptions): string | undefined {
  if (sb.network !== 'host') {
    const which = sb.network === 'none' ? '--network=none' : 'an isolated network (slirp4netns)';
    return (
      `${which} needs a network namespace, which the no-privilege sandbox (proot) cannot create: RUN shares this pod's network. ` +
      'Fix: drop --network=none from the RUN (or the build), or give the build user namespaces (--isolation rootless) or root (--isolation oci)'
    );
  }
  if (sb.resources && (sb.resources.memoryBytes || sb.resources.cpus || sb.resources.pidsLimit)) {
    return '--memory, --cpus and --pids-limit need cgroups, which the no-privilege sandbox (proot) cannot manage; set the pod\'s resource limits instead, or build with --isolation oci as root';
  }
  return undefined;
}

/**
 * proot's arguments for one RUN: the rootfs as `/` (paths are translated, so the process sees
 * nothing of the host outside its root but the bound /proc, /dev and /sys), the RUN's mounts as
 * bindings, fake root ids (-0) for uid 0 or the USER's ids (-i) otherwise, the working directory.
 * `tmpfsDir(dest)` gives a fresh private directory for a tmpfs mount (bound in its place).
 */
export function prootArgs(sb: SandboxOptions, tmpfsDir: (destination: string) => string): string[] {
  const refused = prootRefusal(sb);
  if (refused) throw new BuildError('ISOLATION_UNSUPPORTED', refused);
  const p = sb.process;
  const ids = p.uid === 0 && p.gid === 0 ? ['-0'] : ['-i', `${p.uid}:${p.gid}`];
  const binds = [...HOST_BINDS.map((b) => `${b}:${b}`), `${sb.hostsFile}:/etc/hosts`, `${sb.resolvConf}:/etc/resolv.conf`];
  for (const m of sb.mounts ?? []) binds.push(`${m.type === 'tmpfs' ? tmpfsDir(m.destination) : m.source}:${m.destination}`);
  return ['-r', sb.rootfs, ...ids, '-w', p.cwd, ...binds.flatMap((b) => ['-b', b]), ...p.args];
}

/** The RUN's environment as proot passes it on (proot execs the command with its own environment). */
export function prootEnv(sb: SandboxOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const kv of sb.process.env) {
    const i = kv.indexOf('=');
    if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return env;
}
