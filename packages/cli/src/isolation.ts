import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { RootlessError, UsageError } from './errors.js';

/** `--isolation` (or `$HOIST_ISOLATION`): how RUN is isolated. */
export type IsolationFlag = 'auto' | 'oci' | 'rootless' | 'proot';
const FLAGS: readonly IsolationFlag[] = ['auto', 'oci', 'rootless', 'proot'];

/**
 * `runc`: root's OCI runtime sandbox, or rootless (an ordinary user re-runs hoist in a user
 * namespace, see rootless.ts); `proot`: no privileges at all (a locked-down pod), with why.
 */
export type IsolationChoice = { mode: 'runc' } | { mode: 'proot'; reason: string };

/** What the choice depends on; probes run only when needed. */
export interface IsolationFacts {
  euid: number;
  /** Already inside the user namespace rootless.ts made (its root). */
  usernsChild: boolean;
  /** Does this process hold CAP_SYS_ADMIN (mount, namespaces)? */
  capSysAdmin(): boolean;
  /** Undefined when an unprivileged user namespace can be made here, else why not. */
  usernsRefused(): string | undefined;
}

/** The flag from argv (`--isolation X`, `--isolation=X`), else `$HOIST_ISOLATION`, else auto. */
export function isolationFlag(args: string[], env: NodeJS.ProcessEnv = process.env): IsolationFlag {
  let v: string | undefined;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--isolation') v = args[i + 1];
    else if (args[i]!.startsWith('--isolation=')) v = args[i]!.slice('--isolation='.length);
  }
  v ??= env.HOIST_ISOLATION || 'auto';
  if (!FLAGS.includes(v as IsolationFlag)) throw new UsageError(`--isolation must be auto, oci, rootless or proot, not "${v}"`);
  return v as IsolationFlag;
}

/** Decide the isolation mode; an impossible request is an error naming the fix. */
export function chooseIsolation(flag: IsolationFlag, f: IsolationFacts): IsolationChoice {
  if (f.usernsChild) return { mode: 'runc' }; // rootless.ts already chose
  if (flag === 'proot') return { mode: 'proot', reason: 'chosen with --isolation proot' };
  const root = f.euid === 0;
  if (flag === 'oci' && !root) {
    throw new RootlessError(`--isolation oci runs RUN with runc as root, but hoist runs as uid ${f.euid}; run it as root, or use --isolation rootless (user namespaces) or --isolation proot (no privileges)`);
  }
  if (flag === 'rootless' && root) {
    throw new RootlessError('--isolation rootless is for an ordinary user (it maps the user to root of a user namespace); as root hoist uses runc directly: --isolation oci or auto');
  }
  if (flag !== 'auto') return { mode: 'runc' };
  if (root) {
    if (f.capSysAdmin()) return { mode: 'runc' };
    return { mode: 'proot', reason: 'hoist runs as root without CAP_SYS_ADMIN, so mount and namespaces are refused (a container without privileges)' };
  }
  const refused = f.usernsRefused();
  return refused === undefined ? { mode: 'runc' } : { mode: 'proot', reason: `user namespaces are refused here (${refused})` };
}

/** CAP_SYS_ADMIN (bit 21) in the effective set of /proc/self/status. */
export function hasCapSysAdmin(status = '/proc/self/status'): boolean {
  try {
    const line = readFileSync(status, 'utf8').split('\n').find((l) => l.startsWith('CapEff:'));
    return line !== undefined && (BigInt(`0x${line.slice(7).trim()}`) & (1n << 21n)) !== 0n;
  } catch {
    return true; // no /proc: assume a normal root
  }
}

/** Try to make a user namespace (`unshare --user --map-root-user true`): undefined when it works, else what refused it. */
export function probeUserNamespace(): string | undefined {
  const r = spawnSync('unshare', ['--user', '--map-root-user', 'true'], { encoding: 'utf8' });
  if (r.status === 0) return undefined;
  if (r.error) return `unshare could not run: ${r.error.message}`;
  return r.stderr.trim().split('\n').filter(Boolean).at(-1) ?? `unshare exited with ${r.status}`;
}

/** This process's facts. */
export function hostIsolationFacts(): IsolationFacts {
  return {
    euid: process.geteuid?.() ?? 0,
    usernsChild: process.env.HOIST_USERNS_CHILD === '1',
    capSysAdmin: () => hasCapSysAdmin(),
    usernsRefused: () => probeUserNamespace(),
  };
}
