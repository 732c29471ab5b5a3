/**
 * One typed instruction -> its resolved form for the plan: values expanded where Docker
 * expands them, state (env, workdir, args) updated. RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK
 * command text and exec-form JSON are left alone.
 */
import type { Dockerfile, Node } from './ast.js';
import type { CopyInstruction, Heredoc, Instruction, RunInstruction, RunMount } from './plan-types.js';
import { assertNever, fail } from './errors.js';
import { at } from './instructions.js';
import { expander, wordsExpander, type Expand } from './expand-word.js';
import { MountError, parseMount } from './mounts.js';
import { resolveWorkdir, type StageState } from './state.js';
import { isValidChmod, isValidSignal, normalizePort } from './values.js';

export interface StepContext {
  df: Pick<Dockerfile, 'file' | 'escape'>;
  node: Node;
  state: StageState;
  buildArgs: Record<string, string>;
  /** Global ARGs: name -> resolved value (undefined when declared without one). */
  globals: Map<string, string | undefined>;
  /** Names of ARGs this stage declares (for the unused build-arg warning). */
  usedArgs: Set<string>;
}

export function resolveStep(ins: Instruction, ctx: StepContext): Instruction {
  const { state, node, df } = ctx;
  const lookup = (n: string): string | undefined => state.env.get(n);
  const x = expander(df, node, lookup);
  switch (ins.kind) {
    case 'run':
      return resolveRun(ins, x, ctx);
    case 'copy':
      return resolveCopy(ins, x, ctx);
    case 'env': {
      const pairs: Array<[string, string]> = ins.pairs.map(([k, v]) => [x(k), x(v)]);
      for (const [k, v] of pairs) {
        if (k === '') fail('InvalidEnv', at(node, df.file), 'ENV names can not be blank', 'write ENV NAME=value');
        state.env.set(k, v);
        state.args.delete(k);
      }
      return { kind: 'env', pairs };
    }
    case 'label':
      return { kind: 'label', pairs: ins.pairs.map(([k, v]) => [x(k), x(v)]) };
    case 'workdir': {
      const requested = x(ins.path);
      if (requested === '') fail('MissingArgument', at(node, df.file, ins.path), `WORKDIR ${ins.path} expands to an empty path`, 'give the variable a value (ARG/ENV or --build-arg)');
      const path = resolveWorkdir(state.workdir, requested);
      state.workdir = path;
      return { kind: 'workdir', path };
    }
    case 'user': {
      const user = x(ins.user);
      state.user = user;
      return { kind: 'user', user };
    }
    case 'cmd':
    case 'entrypoint':
    case 'healthcheck':
    case 'maintainer':
      return ins;
    case 'shell':
      state.shell = [...ins.shell];
      return ins;
    case 'onbuild':
      state.onBuild.push(ins.expression);
      return ins;
    case 'expose': {
      const words = wordsExpander(df, node, lookup);
      const ports = new Set<string>();
      for (const raw of ins.ports) {
        for (const w of words(raw)) {
          const norm = normalizePort(w);
          if (!norm) fail('InvalidPort', at(node, df.file, w), `invalid port ${JSON.stringify(w)}`, 'ports look like 80, 80/tcp, 53/udp or 8000-8010');
          for (const p of norm) ports.add(p);
        }
      }
      return { kind: 'expose', ports: [...ports] };
    }
    case 'volume': {
      const paths = ins.paths.map(x);
      if (paths.some((p) => p.trim() === '')) fail('MissingArgument', at(node, df.file), 'VOLUME specified can not be an empty string', 'remove the empty path (check the variables it uses)');
      return { kind: 'volume', paths };
    }
    case 'stopsignal': {
      const signal = x(ins.signal);
      if (!isValidSignal(signal)) fail('InvalidSignal', at(node, df.file, ins.signal), `invalid signal: ${signal}`, 'use a signal name such as SIGTERM or SIGQUIT, or a number');
      return { kind: 'stopsignal', signal };
    }
    case 'arg':
      return resolveArg(ins, x, ctx);
    default:
      return assertNever(ins);
  }
}

function resolveArg(ins: Extract<Instruction, { kind: 'arg' }>, x: Expand, ctx: StepContext): Instruction {
  const { state, buildArgs, globals } = ctx;
  const args: Array<{ name: string; value?: string }> = [];
  for (const a of ins.args) {
    const name = x(a.name);
    if (name === '') fail('InvalidEnv', at(ctx.node, ctx.df.file), 'ARG names can not be blank', 'write ARG NAME=value');
    let value: string | undefined;
    if (Object.prototype.hasOwnProperty.call(buildArgs, name)) value = buildArgs[name];
    else if (a.value !== undefined) value = x(a.value);
    else if (globals.has(name)) value = globals.get(name);
    ctx.usedArgs.add(name);
    state.declared.set(name, value);
    if (value !== undefined) {
      state.env.set(name, value);
      state.args.set(name, value);
      args.push({ name, value });
    } else args.push({ name });
  }
  return { kind: 'arg', args };
}

function resolveRun(ins: RunInstruction, x: Expand, ctx: StepContext): Instruction {
  const mounts: RunMount[] = [];
  for (const flag of ins.mounts.length > 0 ? rawMounts(ctx.node) : []) {
    try {
      const m = parseMount(flag, x, false);
      // a relative target of any mount type is joined with WORKDIR (BuildKit's PrepareMounts);
      // an empty one of a secret or ssh mount is left alone (it means the default path)
      const named = m.type === 'secret' || m.type === 'ssh' ? m.target !== '' : true;
      if (m.target !== undefined && named && !m.target.startsWith('/')) m.target = resolveWorkdir(ctx.state.workdir, m.target);
      mounts.push(m);
    } catch (e) {
      if (e instanceof MountError) fail('InvalidMount', at(ctx.node, ctx.df.file, flag), e.message, e.hint ?? 'see https://docs.docker.com/reference/dockerfile/#run---mount');
      throw e;
    }
  }
  return { ...ins, mounts };
}

function rawMounts(node: Node): string[] {
  return node.flags.filter((f) => f.startsWith('--mount=')).map((f) => f.slice('--mount='.length));
}

function resolveCopy(ins: CopyInstruction, x: Expand, ctx: StepContext): Instruction {
  const { node, df } = ctx;
  const out: CopyInstruction = { ...ins, sources: ins.sources.map(x), dest: x(ins.dest), exclude: ins.exclude.map(x), heredocs: ins.heredocs.map((h) => expandHeredoc(h, ctx)) };
  if (ins.from !== undefined) out.from = literalFrom(ins.from, ctx);
  if (ins.chown !== undefined) out.chown = x(ins.chown);
  if (ins.chmod !== undefined) {
    out.chmod = x(ins.chmod);
    if (!isValidChmod(out.chmod)) fail('InvalidChmod', at(node, df.file, '--chmod'), `invalid chmod parameter: ${out.chmod}`, 'use an octal mode (755, 0644) or a symbolic one (u+x,g-w)');
  }
  if (ins.checksum !== undefined) out.checksum = x(ins.checksum);
  return out;
}

/**
 * As BuildKit: `--from` is taken as written, so the stage graph is known before any variable
 * is; a value that word processing would change (a variable, quotes, escapes) is refused.
 */
function literalFrom(from: string, ctx: StepContext): string {
  const plain = expander(ctx.df, ctx.node, () => undefined)(from);
  if (plain !== from) {
    fail('InvalidFlag', at(ctx.node, ctx.df.file, '--from'), 'variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround', 'declare ARG before the first FROM, add "FROM ${ARG} AS src" and write --from=src');
  }
  return from;
}

/** COPY/ADD heredoc bodies expand variables (quotes kept) unless the terminator was quoted. */
function expandHeredoc(h: Heredoc, ctx: StepContext): Heredoc {
  if (!h.expand) return h;
  const x = expander({ file: ctx.df.file, escape: '\\' }, ctx.node, (n) => ctx.state.env.get(n), { skipProcessQuotes: true });
  return { ...h, content: x(h.content) };
}
