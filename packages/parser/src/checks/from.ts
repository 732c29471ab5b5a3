/** Checks on FROM lines, for every stage: undeclared ARGs, invalid defaults, platform flags. */
import type { Dockerfile, StageAst } from '../ast.js';
import { PLATFORM_ARGS, parsePlatform } from '../args.js';
import { isValidReference } from '../refs.js';
import { expandTracked, suggest, type Expansion } from './words.js';
import type { At, Reporter } from './report.js';

export interface FromContext {
  df: Dockerfile;
  /** Global ARG values with the build args applied, and the automatic platform args. */
  globalEnv: Map<string, string>;
  /** Global ARG values from their defaults only (no build args). */
  defaultEnv: Map<string, string>;
}

/** Names a FROM may use: the automatic platform args and every global ARG, with or without a value. */
function declaredNames(c: FromContext): Set<string> {
  const names = new Set<string>([...PLATFORM_ARGS, 'BUILDOSVERSION', 'TARGETOSVERSION', 'TARGETSTAGE', ...c.globalEnv.keys()]);
  for (const m of c.df.metaArgs) for (const a of m.args) names.add(a.name);
  return names;
}

function undeclared(x: Expansion, names: Set<string>, at: At, r: Reporter): void {
  for (const v of x.unmatched) if (!names.has(v)) r.warn('UndefinedArgInFrom', at, v, suggest(v, names));
}

/** A FROM's location, with the comments above it (they may hold a `check=` for this stage). */
function fromAt(st: StageAst): At {
  return { line: st.node.startLine, endLine: st.node.endLine, ...(st.node.comments ? { comments: st.node.comments } : {}) };
}

function checkPlatform(st: StageAst, c: FromContext, names: Set<string>, r: Reporter): void {
  const at = fromAt(st);
  const x = expandTracked(st.platform!, (n) => c.globalEnv.get(n), { escape: c.df.escape });
  if (x === undefined) return;
  undeclared(x, names, at, r);
  if (x.matched.size === 1 && x.unmatched.size === 0 && x.matched.has('TARGETPLATFORM') && x.result === c.globalEnv.get('TARGETPLATFORM')) {
    r.warn('RedundantTargetPlatform', at, st.platform!);
  }
  if (x.matched.size > 0 || x.unmatched.size > 0 || !/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+){0,2}$/.test(x.result)) return;
  const p = parsePlatform(x.result);
  const name = st.name?.toLowerCase() ?? '';
  if (name.includes(p.os) || name.includes(p.arch)) return;
  r.warn('FromPlatformFlagConstDisallowed', at, x.result);
}

export function fromChecks(c: FromContext, r: Reporter): void {
  const names = declaredNames(c);
  for (const st of c.df.stages) {
    const at = fromAt(st);
    const base = expandTracked(st.baseName, (n) => c.globalEnv.get(n), { escape: c.df.escape });
    if (base !== undefined) undeclared(base, names, at, r);
    if (st.platform !== undefined) checkPlatform(st, c, names, r);
  }
  // as BuildKit: expanded with the defaults alone, every base must still be a valid image name
  for (const st of c.df.stages) {
    const x = expandTracked(st.baseName, (n) => c.defaultEnv.get(n), { escape: c.df.escape });
    if (x === undefined) return;
    if (x.result === 'scratch' || c.df.stages.some((s) => s.name?.toLowerCase() === x.result.toLowerCase())) continue;
    if (!isValidReference(x.result)) r.warn('InvalidDefaultArgInFrom', { line: st.node.startLine, endLine: st.node.endLine }, st.baseName);
  }
}
