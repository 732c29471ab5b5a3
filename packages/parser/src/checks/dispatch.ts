/**
 * Checks BuildKit makes while it dispatches each instruction of the stages it builds (every
 * stage for `--call=check`): undefined variables, key/value format, WORKDIR, CMD/ENTRYPOINT,
 * repeated instructions, EXPOSE, secrets in ARG/ENV, COPY of ignored files.
 */
import type { Command, Dockerfile } from '../ast.js';
import type { BaseImageInfo, CopyInstruction } from '../plan-types.js';
import type { DockerignoreMatcher } from '../dockerignore.js';
import { looksLikeSecret } from './secrets.js';
import { cleanPath } from '../state.js';
import { keywordAsWritten } from './syntax.js';
import { expandTracked, suggest } from './words.js';
import { stateFromBase, stateFromParent, type CheckState } from './stage-state.js';
import type { At, Reporter } from './report.js';

export interface DispatchContext {
  df: Dockerfile;
  globalEnv: Map<string, string>;
  /** Global ARGs declared (value or not), for `ARG NAME` inside a stage. */
  globalDeclared: Set<string>;
  buildArgs: Record<string, string>;
  baseImages: Record<string, BaseImageInfo>;
  ignore?: DockerignoreMatcher;
}

interface Here {
  c: DispatchContext;
  s: CheckState;
  cmd: Command;
  r: Reporter;
  at: At;
}

/** Expands a word in the stage's env, reporting UndefinedVar for what is not defined. */
function expand(h: Here, word: string): string {
  const env = h.s.env;
  const x = expandTracked(word, (n) => env?.get(n), { escape: h.c.df.escape });
  if (x === undefined) return word;
  if (env === undefined) return x.result;
  for (const v of x.unmatched) if (!h.s.declared.has(v)) h.r.warn('UndefinedVar', h.at, v, suggest(v, env.keys()));
  return x.result;
}

function legacyKeyValue(h: Here): void {
  const first = h.cmd.node.rest.split(/[ \t]/, 1)[0] ?? '';
  if (!first.includes('=')) h.r.warn('LegacyKeyValueFormat', h.at, keywordAsWritten(h.cmd.node));
}

function dispatchArg(h: Here, args: Array<{ name: string; value?: string }>): void {
  for (const a of args) {
    if (looksLikeSecret(a.name)) h.r.warn('SecretsUsedInArgOrEnv', h.at, 'ARG', a.name);
    let value: string | undefined;
    if (Object.prototype.hasOwnProperty.call(h.c.buildArgs, a.name)) value = h.c.buildArgs[a.name];
    else if (a.value !== undefined) value = expand(h, a.value);
    else if (h.c.globalDeclared.has(a.name)) value = h.c.globalEnv.get(a.name);
    h.s.declared.add(a.name);
    if (value !== undefined) h.s.env?.set(a.name, value);
  }
}

function usedOnce(h: Here, name: string): void {
  const prev = h.s.once.get(name.toLowerCase());
  // reported at the earlier instruction (the one that has no effect), as BuildKit does
  if (prev) h.r.warn('MultipleInstructionsDisallowed', { ...prev, ...(h.at.comments ? { comments: h.at.comments } : {}) }, name);
  h.s.once.set(name.toLowerCase(), h.at);
}

function exposeChecks(h: Here): void {
  for (const raw of h.cmd.node.args) {
    const port = expand(h, raw);
    const parts = port.split(':');
    const container = parts[parts.length - 1]!;
    const slash = container.indexOf('/');
    const proto = slash < 0 ? '' : container.slice(slash + 1);
    if (proto !== proto.toLowerCase()) h.r.warn('ExposeProtoCasing', h.at, port);
    if (parts.length > 1 && parts.slice(0, -1).some((p) => p !== '')) h.r.warn('ExposeInvalidFormat', h.at, port);
  }
}

function copyChecks(h: Here, ins: CopyInstruction): void {
  const sources = ins.sources.map((s) => expand(h, s));
  expand(h, ins.dest);
  if (ins.chown !== undefined) expand(h, ins.chown);
  if (ins.chmod !== undefined) expand(h, ins.chmod);
  const ignore = h.c.ignore;
  if (!ignore || ignore.hasExclusions || ins.from !== undefined) return;
  const heredocs = new Set(ins.heredocs.map((d) => d.name));
  for (const src of sources) {
    if (heredocs.has(src) || (ins.add && /^[a-z][a-z0-9+.-]*:\/\//i.test(src)) || (ins.add && src.startsWith('git@'))) continue;
    const clean = cleanPath(src);
    const root = clean === '.' || clean === '/';
    const ignored = root ? ignore.patterns.some((p) => !p.exclusion && ['*', '**', '**/*'].includes(p.pattern)) : ignore.matches(clean.replace(/^\/+/, ''));
    if (ignored) h.r.warn('CopyIgnoredFile', h.at, ins.add ? 'Add' : 'Copy', clean);
  }
}

function dispatch(h: Here): void {
  const ins = h.cmd.instruction;
  switch (ins.kind) {
    case 'env': {
      legacyKeyValue(h);
      const pairs = ins.pairs.map(([k, v]) => [expand(h, k), expand(h, v)] as const);
      for (const [k, v] of pairs) {
        if (looksLikeSecret(k)) h.r.warn('SecretsUsedInArgOrEnv', h.at, 'ENV', k);
        h.s.env?.set(k, v);
      }
      return;
    }
    case 'label':
      legacyKeyValue(h);
      for (const [k, v] of ins.pairs) (expand(h, k), expand(h, v));
      return;
    case 'arg':
      return dispatchArg(h, ins.args);
    case 'workdir': {
      const path = expand(h, ins.path);
      if (!h.s.workdirSet && !path.startsWith('/')) h.r.warn('WorkdirRelativePath', h.at, path);
      h.s.workdirSet = true;
      return;
    }
    case 'cmd':
    case 'entrypoint': {
      const name = keywordAsWritten(h.cmd.node);
      usedOnce(h, name);
      if (ins.command.form === 'shell' && !h.s.shellSet) h.r.warn('JSONArgsRecommended', h.at, name);
      return;
    }
    case 'healthcheck':
      return usedOnce(h, keywordAsWritten(h.cmd.node));
    case 'shell':
      h.s.shellSet = ins.shell.length > 0;
      return;
    case 'expose':
      return exposeChecks(h);
    case 'copy':
      return copyChecks(h, ins);
    case 'user':
      expand(h, ins.user);
      return;
    case 'volume':
      for (const p of ins.paths) expand(h, p);
      return;
    case 'stopsignal':
      expand(h, ins.signal);
      return;
    case 'run':
    case 'onbuild':
    case 'maintainer':
      return;
  }
}

/** The stage a FROM builds on: an earlier stage's index, or its base image reference. */
function baseOf(c: DispatchContext, i: number): { stage: number } | { image?: string; scratch: boolean } {
  const st = c.df.stages[i]!;
  const x = expandTracked(st.baseName, (n) => c.globalEnv.get(n), { escape: c.df.escape });
  const name = x?.result ?? st.baseName;
  if (name === 'scratch') return { scratch: true };
  for (let j = i - 1; j >= 0; j--) if (c.df.stages[j]!.name?.toLowerCase() === name.toLowerCase()) return { stage: j };
  return { image: name, scratch: false };
}

export function dispatchChecks(c: DispatchContext, inScope: Set<number>, r: Reporter, silent: Reporter): void {
  const finals: CheckState[] = [];
  c.df.stages.forEach((st, i) => {
    const b = baseOf(c, i);
    const s = 'stage' in b ? stateFromParent(finals[b.stage]!) : stateFromBase(b.image ? c.baseImages[b.image] : undefined, b.scratch);
    for (const cmd of st.commands) {
      const at: At = { line: cmd.node.startLine, endLine: cmd.node.endLine, ...(cmd.node.comments ? { comments: cmd.node.comments } : {}) };
      dispatch({ c, s, cmd, r: inScope.has(i) ? r : silent, at });
    }
    finals[i] = s;
  });
}
