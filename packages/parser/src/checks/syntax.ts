/**
 * Checks on the syntax layer (BuildKit runs them while parsing, so they are reported even when
 * a later stage of parsing fails): casing, stage names, MAINTAINER, empty continuation lines.
 */
import type { Node } from '../ast.js';
import type { ParseWarning } from '../plan-types.js';
import type { Reporter } from './report.js';

const RESERVED_STAGE_NAMES = new Set(['context', 'scratch']);

/** The keyword exactly as written (`Node.keyword` is lower-cased). */
export function keywordAsWritten(node: Node): string {
  return node.original.slice(0, node.keyword.length);
}

const isLower = (s: string): boolean => s === s.toLowerCase();
const isUpper = (s: string): boolean => s === s.toUpperCase();

interface FromParts {
  node: Node;
  name?: string;
  as?: string;
}

function fromParts(node: Node): FromParts {
  const a = node.args;
  return a.length === 3 && a[1]!.toLowerCase() === 'as' ? { node, as: a[1]!, name: a[2]! } : { node };
}

function checkFrom(f: FromParts, r: Reporter): void {
  const cmd = keywordAsWritten(f.node);
  const at = { line: f.node.startLine, endLine: f.node.endLine, ...(f.node.comments ? { comments: f.node.comments } : {}) };
  if (f.name !== undefined && !isLower(f.name)) r.warn('StageNameCasing', at, f.name);
  if (f.as !== undefined && (isLower(cmd) || isUpper(cmd)) && !(isLower(cmd) ? isLower(f.as) : isUpper(f.as))) {
    r.warn('FromAsCasing', at, cmd, f.as);
  }
}

function checkStageNames(froms: FromParts[], r: Reporter): void {
  const seen = new Set<string>();
  for (const f of froms) {
    if (f.name === undefined) continue;
    const name = f.name.toLowerCase();
    const at = { line: f.node.startLine, endLine: f.node.endLine };
    if (RESERVED_STAGE_NAMES.has(name)) r.warn('ReservedStageName', at, name);
    if (seen.has(name)) r.warn('DuplicateStageName', at, name);
    seen.add(name);
  }
}

/** Majority casing over FROM and every instruction in a stage (global ARGs do not count). */
function checkCasing(stageNodes: Node[], r: Reporter): void {
  let lower = 0;
  let upper = 0;
  for (const n of stageNodes) {
    const k = keywordAsWritten(n);
    if (isLower(k)) lower++;
    else if (isUpper(k)) upper++;
  }
  const majorityLower = lower > upper;
  for (const n of stageNodes) {
    const k = keywordAsWritten(n);
    const want = majorityLower && !isLower(k) ? 'lowercase' : !majorityLower && !isUpper(k) ? 'uppercase' : '';
    if (want !== '') r.warn('ConsistentInstructionCasing', { line: n.startLine, endLine: n.endLine }, k, want);
  }
}

/** Experimental InvalidDefinitionDescription: a comment right above ARG / FROM … AS should start with the name. */
function checkDescription(n: Node, keys: string[], r: Reporter): void {
  const last = n.comments?.[n.comments.length - 1];
  if (last === undefined || keys.length === 0 || keys.includes(last.split(' ')[0]!)) return;
  r.warn('InvalidDefinitionDescription', { line: n.startLine, endLine: n.endLine, ...(n.comments ? { comments: n.comments } : {}) }, keywordAsWritten(n).toUpperCase(), keys.length > 1 ? '<arg_key>' : keys[0]!);
}

export function syntaxChecks(lexed: { nodes: Node[]; warnings: ParseWarning[] }, r: Reporter): void {
  for (const w of lexed.warnings) if (w.code === 'NoEmptyContinuation' && w.line !== undefined) r.warn('NoEmptyContinuation', { line: w.line });
  for (const n of lexed.nodes) {
    if (n.keyword === 'arg') checkDescription(n, n.args.map((a) => a.split('=')[0]!), r);
    if (n.keyword === 'from') {
      const name = fromParts(n).name;
      if (name !== undefined) checkDescription(n, [name.toLowerCase()], r);
    }
  }
  const first = lexed.nodes.findIndex((n) => n.keyword === 'from');
  const stageNodes = first < 0 ? [] : lexed.nodes.slice(first);
  const froms: FromParts[] = [];
  for (const n of stageNodes) {
    if (n.keyword === 'from') {
      const f = fromParts(n);
      froms.push(f);
      checkFrom(f, r);
    } else if (n.keyword === 'maintainer') {
      r.warn('MaintainerDeprecated', { line: n.startLine, endLine: n.endLine, ...(n.comments ? { comments: n.comments } : {}) });
    }
  }
  checkStageNames(froms, r);
  checkCasing(stageNodes, r);
}
