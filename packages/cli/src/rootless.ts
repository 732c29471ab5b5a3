import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import type { Duplex } from 'node:stream';
import type { IdRange } from '@hoist/oci';
import { RootlessError } from './errors.js';
import { planRootless, readHostFacts, type RootlessPlan } from './rootless-host.js';
import { chooseIsolation, hostIsolationFacts, isolationFlag } from './isolation.js';

/**
 * Rootless mode (issue 10, mode 1), the way rootlesskit and `buildah unshare` do it: a hoist
 * started by an ordinary user re-runs itself as root of a new user + mount namespace in which
 * the user is uid 0 and the user's subordinate ids are 1..65536. Inside, everything works as
 * under root — the store, overlayfs (kernel >= 5.11), chown to any mapped id, runc (which sees
 * the namespace and manages cgroups rootless) — and files keep their ids as the namespace sees
 * them, so layers and digests are the same as root's. Mounts die with the namespace.
 *
 * Node cannot unshare(2) or execve(2) itself, so this process stays as a thin parent:
 *   unshare --user --mount -- sh -c '<handshake>' … setpriv --pdeathsig HUP -- node hoist …
 * The child (the same pid throughout) says "r" on fd 3 once the namespace exists; the parent
 * then writes its id maps with newuidmap/newgidmap (setuid, from Debian's `uidmap`), answers
 * "g", and the child execs hoist with stderr restored from fd 4 (a terminal stays a terminal).
 * If this parent dies (even by SIGKILL), the child gets SIGHUP and stops as on Ctrl-C, cleaning
 * up (setpriv sets the parent-death signal after the exec that gave it its capabilities, which
 * would have cleared it).
 * This parent loads only Node built-ins and small modules (rootless-host, isolation; report.js and the
 * packages load in the child): a fully cached build pays one extra Node start (~50 ms).
 */

/** Commands that never touch the store: they run as the user, no namespace. */
const NO_NAMESPACE = new Set(['version', 'plan', 'login', 'logout', 'help']);
/** Commands whose sandboxes or files are affected by a single-id mapping: they show the warning. */
const WARN_FOR = new Set(['build', 'run', 'import']);

/** The subcommand in argv (after node and the script), skipping global options. */
export function commandOf(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--root') {
      i++;
      continue;
    }
    if (a.startsWith('-')) continue;
    return a;
  }
  return undefined;
}

/** Should this invocation re-run itself in a user namespace? Only for a non-root user and a store command. */
export function wantsUserNamespace(args: string[], euid: number): boolean {
  if (euid === 0) return false;
  if (args.includes('--help') || args.includes('-h')) return false;
  const cmd = commandOf(args);
  return cmd !== undefined && !NO_NAMESPACE.has(cmd);
}

/** newuidmap/newgidmap arguments: pid, then "inside outside count" triples. */
export function idMapArgs(pid: number, ranges: IdRange[]): string[] {
  return [String(pid), ...ranges.flatMap((r) => [String(r.inside), String(r.outside), String(r.count)])];
}

const HANDSHAKE = 'printf r >&3; read -r go <&3 || exit 125; [ "$go" = g ] || exit 125; exec "$@" 2>&4 3>&- 4>&-';

/**
 * Run this hoist invocation again inside a user namespace and return its exit code, or
 * undefined when this process should run the command itself (root, or no store needed).
 */
export async function reexecRootless(args: string[], write: (s: string) => void): Promise<number | undefined> {
  const euid = process.geteuid?.() ?? 0;
  if (process.env.HOIST_USERNS_CHILD === '1' && euid !== 0) {
    throw new RootlessError('hoist was started in a user namespace but is not its root (the id maps were not written); run it again, or as root');
  }
  if (!wantsUserNamespace(args, euid)) return undefined;
  // --isolation proot: run here, RUN under proot. auto does not probe first: when the namespace
  // is refused below, this process runs the command itself and the build picks proot with the reason
  const flag = isolationFlag(args);
  if (chooseIsolation(flag, { ...hostIsolationFacts(), usernsRefused: () => undefined }).mode === 'proot') return undefined;
  try {
    const plan = planRootless(readHostFacts());
    // warned once the namespace exists (auto may yet fall back to proot, where they do not apply)
    const warn = (): void => {
      if (WARN_FOR.has(commandOf(args) ?? '')) for (const w of plan.warnings) write(warningLine(w, args));
    };
    return await runChild(plan, args, warn);
  } catch (e) {
    if (flag === 'auto' && e instanceof RootlessError && e.refused) return undefined; // no user namespace: no privileges at all
    throw e;
  }
}

/** A warning as the progress mode prints them: a JSON event with --progress json, else a WARNING line. */
export function warningLine(message: string, args: string[]): string {
  const json = args.some((a, i) => a === '--progress=json' || (a === '--progress' && args[i + 1] === 'json'));
  return json ? `${JSON.stringify({ time: new Date().toISOString(), type: 'warning', message })}\n` : `WARNING: ${message}\n`;
}

function spawnChild(plan: RootlessPlan, args: string[]): ChildProcess {
  const hoist = [process.execPath, ...process.execArgv, process.argv[1]!, ...args];
  const unshareArgs = ['--user', '--mount', '--propagation', 'private', ...(plan.mapping === 'single' ? ['--map-root-user'] : [])];
  return spawn('unshare', [...unshareArgs, '--', 'sh', '-c', HANDSHAKE, 'hoist', 'setpriv', '--pdeathsig', 'HUP', '--', ...hoist], {
    stdio: ['inherit', 'inherit', 'pipe', 'pipe', 2],
    env: { ...process.env, HOIST_USERNS_CHILD: '1' },
  });
}

function runChild(plan: RootlessPlan, args: string[], onNamespace: () => void): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const child = spawnChild(plan, args);
    let early = '';
    let started = false;
    child.stderr!.on('data', (d: Buffer) => (early += d.toString()));
    const forward = (sig: NodeJS.Signals): void => void child.kill(sig);
    // Ctrl-C reaches the child from the terminal itself (same process group): not forwarded
    // again, or hoist would take it as a second interrupt and stop without cleaning up
    const ignore = (): void => undefined;
    process.on('SIGTERM', forward).on('SIGHUP', forward).on('SIGINT', ignore);
    const fd3 = child.stdio[3] as Duplex;
    fd3.on('error', () => undefined);
    fd3.once('data', () => {
      const err = plan.mapping === 'subids' ? writeIdMaps(plan, child.pid!) : undefined;
      if (err) {
        child.kill('SIGKILL');
        reject(err);
        return;
      }
      started = true;
      onNamespace();
      fd3.write('g\n');
    });
    child.on('error', (e: NodeJS.ErrnoException) => reject(e.code === 'ENOENT' ? unavailable('unshare (util-linux) is not installed: apt-get install util-linux') : e));
    child.on('close', (code, signal) => {
      // SIGINT stays ignored: main exits with `process.exit` right after this resolves
      process.off('SIGTERM', forward).off('SIGHUP', forward);
      if (!started) {
        process.off('SIGINT', ignore); // this process may yet run the command itself (proot)
        reject(new RootlessError(namespaceRefused(early), { refused: true }));
        return;
      }
      if (early) process.stderr.write(early);
      resolve(code ?? 128 + (signal ? constants.signals[signal] : 0));
    });
  });
}

/** Write the child's uid and gid maps; an error to report when newuidmap/newgidmap refuse. */
function writeIdMaps(plan: Extract<RootlessPlan, { mapping: 'subids' }>, pid: number): RootlessError | undefined {
  for (const [tool, ranges, file] of [[plan.newuidmap, plan.uidMap, '/etc/subuid'], [plan.newgidmap, plan.gidMap, '/etc/subgid']] as const) {
    const r = spawnSync(tool, idMapArgs(pid, ranges), { encoding: 'utf8' });
    if (r.status !== 0) {
      const why = (r.stderr || r.error?.message || `exit ${r.status}`).trim();
      return unavailable(`${tool} refused the id map (${why}); check this user's lines in ${file} (ranges must not overlap other users' or your own uid)`);
    }
  }
  return undefined;
}

function namespaceRefused(stderr: string): string {
  const said = stderr.trim().split('\n').filter(Boolean).at(-1) ?? 'no reason given';
  return (
    `cannot create a user namespace for the rootless build (${said}). This environment forbids them ` +
    '(a container runtime\'s seccomp profile without CAP_SYS_ADMIN, or a sysctl such as user.max_user_namespaces=0); ' +
    'allow unprivileged user namespaces, run hoist as root, or build without any privilege: --isolation proot (apt-get install proot)'
  );
}

function unavailable(message: string): RootlessError {
  return new RootlessError(message);
}
