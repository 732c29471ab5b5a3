import { readFileSync } from 'node:fs';
import { parseIdMap, type IdRange } from '@hoist/oci';
import { BuildError } from '../errors.js';
import { SANDBOX_BINFMT, SANDBOX_HELPER } from './emulation.js';

interface SpecMount {
  destination: string;
  type: string;
  source: string;
  options?: string[];
}

/** What the sandbox needs to emulate through a private binfmt_misc instance. */
export interface PrivateEmulation {
  /** The static emulator on the host, and where it goes in the sandbox (the registered path). */
  emulator: string;
  target: string;
  register: string;
  helper: string;
}

/**
 * Adapt a runtime spec so that the step runs emulated through a binfmt_misc instance private
 * to the sandbox (see emulation.ts):
 * - a user namespace mapping every id this process has to itself (files keep their owners);
 * - sysfs cannot be mounted in a user namespace that does not own the network namespace it
 *   joins, so /sys becomes a read-only bind of the host's (as for `--network=host`);
 * - binfmt_misc, the static emulator and a static host shell under /dev (a tmpfs, so the
 *   mount points never reach a layer);
 * - the process starts as the host shell, which registers the handler and `exec`s the command.
 */
export function emulatedSpec(spec: Record<string, unknown>, emu: PrivateEmulation, uidMap = readFileSync('/proc/self/uid_map', 'utf8'), gidMap = readFileSync('/proc/self/gid_map', 'utf8')): Record<string, unknown> {
  const proc = spec.process as { args: string[]; user: { uid: number }; capabilities: Record<string, string[]> };
  const linux = { ...(spec.linux as Record<string, unknown>) };
  linux.namespaces = [...(linux.namespaces as Array<{ type: string }>), { type: 'user' }];
  linux.uidMappings = identity(parseIdMap(uidMap));
  linux.gidMappings = identity(parseIdMap(gidMap));
  const mounts = (spec.mounts as SpecMount[]).map((m) => (m.destination === '/sys' && m.type === 'sysfs' ? { destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] } : m));
  mounts.push(
    { destination: SANDBOX_BINFMT, type: 'binfmt_misc', source: 'binfmt_misc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: emu.target, type: 'bind', source: emu.emulator, options: ['bind', 'ro', 'nosuid', 'nodev'] },
    { destination: SANDBOX_HELPER, type: 'bind', source: emu.helper, options: ['bind', 'ro', 'nosuid', 'nodev'] },
  );
  const nonRoot = proc.user.uid !== 0;
  const args = [SANDBOX_HELPER, 'sh', '-c', REGISTER_AND_EXEC, 'hoist-emulation', emu.register, nonRoot ? '1' : '0', ...proc.args];
  return { ...spec, process: { ...proc, args, capabilities: nonRoot ? registeringCaps(proc.capabilities) : proc.capabilities }, mounts, linux };
}

/**
 * `register` is writable by root only. A step of another user gets CAP_DAC_OVERRIDE as an
 * ambient capability (it survives the exec of the shell, which writes `register` with it),
 * and the shell drops it (ambient and inheritable, with busybox setpriv) before it execs the
 * command: the command then has no capabilities, as a non-root RUN has in Docker.
 */
function registeringCaps(caps: Record<string, string[]>): Record<string, string[]> {
  if (!(caps.bounding ?? []).includes(DAC)) {
    throw new BuildError('PLATFORM_UNSUPPORTED', `an emulated step of a non-root user needs ${DAC} in the sandbox's capabilities to register its emulator; register a binfmt_misc handler on the host instead (apt-get install binfmt-support qemu-user-static)`);
  }
  const add = (l: string[] | undefined): string[] => [...new Set([...(l ?? []), DAC])];
  return { ...caps, permitted: add(caps.permitted), effective: add(caps.effective), inheritable: add(caps.inheritable), ambient: add(caps.ambient) };
}

const DAC = 'CAP_DAC_OVERRIDE';

/**
 * $1 is the registration line (printf %s: binfmt_misc decodes the \\x escapes itself), $2 is 1
 * when the ambient CAP_DAC_OVERRIDE must be dropped (a non-root step), $3… the command.
 * busybox prefers its own applets for a bare name (`exec uname` would run the host's uname),
 * so a name without a slash is looked up in PATH here and exec'd by its path.
 */
const REGISTER_AND_EXEC = [
  `printf %s "$1" > ${SANDBOX_BINFMT}/register || exit 125`,
  'drop=$2; shift 2; p=$1; shift',
  'case $p in */*) ;; *) IFS=:; for d in $PATH; do if [ -f "$d/$p" ] && [ -x "$d/$p" ]; then p=$d/$p; break; fi; done; unset IFS ;; esac',
  `case $p in */*) [ "$drop" = 1 ] && exec ${SANDBOX_HELPER} setpriv --inh-caps -dac_override --ambient-caps -dac_override "$p" "$@"; exec "$p" "$@" ;; esac`,
  'echo "exec: $p: not found in PATH" >&2; exit 127',
].join('\n');

/** Each id range this process has, mapped to itself in the sandbox's namespace. */
function identity(ranges: IdRange[]): Array<{ containerID: number; hostID: number; size: number }> {
  return ranges.map((r) => ({ containerID: r.inside, hostID: r.inside, size: r.count }));
}
