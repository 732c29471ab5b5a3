import type { ContainerConfig } from '@hoist/oci';
import { goQuote, type CommandForm, type Instruction } from '@hoist/parser';

/** The PATH an image without one gets: the planner's constant, one definition. */
export { DEFAULT_PATH } from '@hoist/parser';
export const DEFAULT_SHELL = ['/bin/sh', '-c'];

export function envGet(env: readonly string[] | undefined, name: string): string | undefined {
  const hit = (env ?? []).find((e) => e.startsWith(`${name}=`));
  return hit?.slice(name.length + 1);
}

export function envSet(env: readonly string[] | undefined, name: string, value: string): string[] {
  const out = [...(env ?? [])];
  const i = out.findIndex((e) => e.startsWith(`${name}=`));
  if (i >= 0) out[i] = `${name}=${value}`;
  else out.push(`${name}=${value}`);
  return out;
}

export function commandArgs(c: CommandForm, shell: readonly string[] | undefined): string[] {
  return c.form === 'exec' ? [...c.args] : [...(shell ?? DEFAULT_SHELL), c.command];
}

export interface StageFlags {
  cmdSet: boolean;
}

/**
 * Apply a metadata instruction to the container config exactly as Docker does. Returns the
 * new config; `flags.cmdSet` tracks whether this stage set CMD (ENTRYPOINT resets an inherited CMD).
 */
export function applyConfig(c: ContainerConfig, ins: Instruction, flags: StageFlags): ContainerConfig {
  const n: ContainerConfig = { ...c };
  switch (ins.kind) {
    case 'env':
      for (const [k, v] of ins.pairs) n.Env = envSet(n.Env, k, v);
      return n;
    case 'label':
      n.Labels = { ...(n.Labels ?? {}) };
      for (const [k, v] of ins.pairs) n.Labels[k] = v;
      return n;
    case 'workdir':
      n.WorkingDir = ins.path;
      return n;
    case 'user':
      n.User = ins.user;
      return n;
    case 'cmd':
      n.Cmd = commandArgs(ins.command, n.Shell);
      n.ArgsEscaped = true;
      flags.cmdSet = true;
      return n;
    case 'entrypoint':
      n.Entrypoint = commandArgs(ins.command, n.Shell);
      if (!flags.cmdSet) n.Cmd = null;
      return n;
    case 'expose':
      n.ExposedPorts = { ...(n.ExposedPorts ?? {}) };
      for (const p of exposedPorts(ins.ports)) n.ExposedPorts[p] = {};
      return n;
    case 'volume':
      n.Volumes = { ...(n.Volumes ?? {}) };
      for (const p of ins.paths) n.Volumes[p] = {};
      return n;
    case 'stopsignal':
      n.StopSignal = ins.signal;
      return n;
    case 'shell':
      n.Shell = [...ins.shell];
      return n;
    case 'onbuild':
      n.OnBuild = [...(n.OnBuild ?? []), ins.expression];
      return n;
    case 'healthcheck': {
      if (ins.test[0] === 'NONE') {
        n.Healthcheck = { Test: ['NONE'] };
        return n;
      }
      const h: NonNullable<ContainerConfig['Healthcheck']> = { Test: [...ins.test] };
      if (ins.interval !== undefined) h.Interval = ins.interval;
      if (ins.timeout !== undefined) h.Timeout = ins.timeout;
      if (ins.startPeriod !== undefined) h.StartPeriod = ins.startPeriod;
      if (ins.startInterval !== undefined) h.StartInterval = ins.startInterval;
      if (ins.retries !== undefined) h.Retries = ins.retries;
      n.Healthcheck = h;
      return n;
    }
    case 'maintainer':
    case 'arg':
    case 'run':
    case 'copy':
      return n;
    default:
      return assertNever(ins);
  }
}

export function assertNever(x: never): never {
  throw new Error(`unexpected instruction ${JSON.stringify(x)}`);
}

/** Go's `%q` of a []string, as BuildKit prints CMD and ENTRYPOINT: `["a" "b c"]`. */
export function goQuotedList(args: readonly string[]): string {
  return `[${args.map(goQuote).join(' ')}]`;
}

/** Go's time.Duration String(): `1h0m0s`, `5m0s`, `30s`, `1.5s`, `500ms`, `0s`. */
export function goDuration(ns: number): string {
  if (ns === 0) return '0s';
  const neg = ns < 0;
  let n = Math.abs(ns);
  let out: string;
  if (n < 1e9) {
    const [unit, div] = n < 1e3 ? ['ns', 1] : n < 1e6 ? ['µs', 1e3] : ['ms', 1e6];
    out = `${trimFraction(n / div!)}${unit}`;
  } else {
    const h = Math.floor(n / 3.6e12);
    n -= h * 3.6e12;
    const m = Math.floor(n / 6e10);
    n -= m * 6e10;
    const secs = `${trimFraction(n / 1e9)}s`;
    out = h > 0 ? `${h}h${m}m${secs}` : m > 0 ? `${m}m${secs}` : secs;
  }
  return neg ? `-${out}` : out;
}

function trimFraction(x: number): string {
  return x.toFixed(9).replace(/\.?0+$/, '');
}

/** BuildKit's `runCommandString`: `|N K=V ... ` before the command when the stage declared ARGs. */
function runCommandString(args: readonly string[], historyArgs: ReadonlyArray<[string, string]>): string {
  const pre = historyArgs.length > 0 ? [`|${historyArgs.length}`, ...historyArgs.map(([k, v]) => `${k}=${v}`)] : [];
  return [...pre, ...args].join(' ');
}

export interface HistoryInput {
  keyword: string;
  ins: Instruction;
  /** The stage's SHELL at this step. */
  shell: readonly string[] | undefined;
  /** ARGs declared in the stage so far, with their values (see Step.historyArgs). */
  historyArgs: ReadonlyArray<[string, string]>;
  /** The command line a RUN executes (for RUN only). */
  runArgs?: readonly string[];
}

/**
 * `created_by` exactly as BuildKit records it (dockerfile2llb's commitToHistory calls); steps
 * that add a layer end in ` # buildkit`. `undefined` for instructions BuildKit records no
 * history entry for (ONBUILD).
 */
export function historyText(h: HistoryInput): string | undefined {
  const { ins } = h;
  switch (ins.kind) {
    case 'run':
      return `RUN ${runCommandString(h.runArgs ?? [], h.historyArgs)} # buildkit`;
    case 'copy': {
      const parts = [ins.add ? 'ADD' : 'COPY'];
      if (ins.parents) parts.push('--parents');
      if (ins.chown) parts.push(`--chown=${ins.chown}`);
      if (ins.chmod) parts.push(`--chmod=${ins.chmod}`);
      parts.push(...ins.sources, ...ins.heredocs.map((d) => `<<${d.name}`), ins.dest);
      return `${parts.join(' ')} # buildkit`;
    }
    case 'env':
      return `ENV ${ins.pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`;
    case 'label':
      return `LABEL ${ins.pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`;
    case 'cmd':
      return `CMD ${goQuotedList(commandArgs(ins.command, h.shell))}`;
    case 'entrypoint':
      return `ENTRYPOINT ${goQuotedList(commandArgs(ins.command, h.shell))}`;
    case 'workdir':
      return `WORKDIR ${ins.path}`;
    case 'user':
      return `USER ${ins.user}`;
    case 'expose':
      return `EXPOSE [${exposedPorts(ins.ports).join(' ')}]`;
    case 'volume':
      return `VOLUME [${ins.paths.join(' ')}]`;
    case 'stopsignal':
      return `STOPSIGNAL ${ins.signal}`;
    case 'shell':
      return `SHELL [${ins.shell.join(' ')}]`;
    case 'maintainer':
      return `MAINTAINER ${ins.name}`;
    case 'arg':
      return `ARG ${ins.args.map((a) => (a.value !== undefined ? `${a.name}=${a.value}` : a.name)).join(' ')}`;
    case 'healthcheck': {
      const d = (v: number | undefined): string => goDuration(v ?? 0);
      return `HEALTHCHECK {Test:[${ins.test.join(' ')}] Interval:${d(ins.interval)} Timeout:${d(ins.timeout)} StartPeriod:${d(ins.startPeriod)} StartInterval:${d(ins.startInterval)} Retries:${ins.retries ?? 0}}`;
    }
    case 'onbuild':
      return undefined;
    default:
      return assertNever(ins);
  }
}

/** EXPOSE values as the config keys them: `port/proto`, protocol lower-cased, tcp by default. */
export function exposedPorts(ports: readonly string[]): string[] {
  return ports.map((p) => {
    const [port, proto] = p.split('/', 2);
    return `${port}/${(proto || 'tcp').toLowerCase()}`;
  });
}
