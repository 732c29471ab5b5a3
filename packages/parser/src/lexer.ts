/**
 * Physical lines -> logical instructions, exactly as BuildKit's Dockerfile parser does it
 * (directives, escape character, continuations with comments/blank lines inside, heredoc
 * bodies). This part is our own rather than `dockerfile-ast`'s, because the conformance goldens
 * need BuildKit's byte-exact splitting and `dockerfile-ast` differs from BuildKit on real files:
 * it continues a line that ends in an escaped escape (`C:\\dir\\` in docker-library's Windows
 * images, which BuildKit ends there), it mis-reads several heredocs in one RUN, and it has no
 * BuildKit flag/argument splitting (FORMAT.md §4) to build the dump on. `dockerfile-ast` is kept as an independent oracle in test/dockerfile-ast.test.ts (same instructions at the same
 * lines on the corpora, apart from those documented differences).
 * See /work/shared/conformance/FORMAT.md §3 and §5.
 */
import type { ParseWarning } from './plan-types.js';
import type { Node } from './ast.js';
import { fail } from './errors.js';
import { isSpace, trimLeftSpace, utf8Length } from './text.js';
import { buildNode, heredocOpeners } from './split.js';

const MAX_LINE_BYTES = 65535;
const DIRECTIVE_RE = /^#[\t\n\f\r ]*([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*$/;
const KNOWN_DIRECTIVES = new Set(['syntax', 'escape', 'check']);

export interface LexResult {
  escape: string;
  directives: Record<string, string>;
  nodes: Node[];
  warnings: ParseWarning[];
}

interface Physical {
  /** Line text without its line ending. */
  text: string;
  /** Line text with its `\n` (if any), for heredoc bodies. */
  raw: string;
}

function splitPhysical(text: string): Physical[] {
  const out: Physical[] = [];
  let start = 0;
  if (text.charCodeAt(0) === 0xfeff) start = 1;
  while (start < text.length) {
    let nl = text.indexOf('\n', start);
    const end = nl < 0 ? text.length : nl + 1;
    const raw = text.slice(start, end);
    let j = raw.length;
    while (j > 0 && (raw.charCodeAt(j - 1) === 10 || raw.charCodeAt(j - 1) === 13)) j--;
    out.push({ text: raw.slice(0, j), raw });
    start = end;
    nl = -1;
  }
  return out;
}

/** Removes a trailing escape character (and blanks after it); reports whether the line continues. */
function trimContinuation(line: string, esc: string): { text: string; more: boolean } {
  let end = line.length;
  while (end > 0 && (line.charCodeAt(end - 1) === 32 || line.charCodeAt(end - 1) === 9)) end--;
  if (end > 0 && line[end - 1] === esc && !(end > 1 && line[end - 2] === esc)) {
    return { text: line.slice(0, end - 1), more: true };
  }
  return { text: line, more: false };
}

function isCommentLine(line: string): boolean {
  return trimLeftSpace(line).startsWith('#');
}

export function lex(text: string, file: string): LexResult {
  const lines = splitPhysical(text);
  const directives: Record<string, string> = {};
  const warnings: ParseWarning[] = [];
  const nodes: Node[] = [];
  let esc = '\\';
  let inDirectives = true;
  let comments: string[] = [];
  let i = 0;
  const n = lines.length;
  const checkLength = (k: number): void => {
    const t = lines[k]!.text;
    if (t.length * 3 > MAX_LINE_BYTES && utf8Length(t) > MAX_LINE_BYTES) {
      fail('LineTooLong', { file, line: k + 1, column: 1 }, `dockerfile line greater than max allowed size of ${MAX_LINE_BYTES}`, 'split the line with line continuations or move the data into a file in the build context');
    }
  };
  while (i < n) {
    checkLength(i);
    const phys = lines[i]!;
    const lineNo = i + 1;
    i++;
    const first = trimLeftSpace(phys.text);
    if (inDirectives) {
      const m = DIRECTIVE_RE.exec(first);
      const key = m ? m[1]!.toLowerCase() : '';
      if (m && KNOWN_DIRECTIVES.has(key)) {
        const column = phys.text.length - first.length + 1;
        if (key in directives) {
          fail('DuplicateDirective', { file, line: lineNo, column }, `only one ${key} parser directive can be used`, `remove the repeated "# ${key}=" line`);
        }
        const value = m[2]!;
        if (key === 'escape') {
          if (value !== '`' && value !== '\\') {
            fail('InvalidDirective', { file, line: lineNo, column }, `invalid escape token '${value}' does not match \` or \\`, 'use "# escape=\\" (default) or "# escape=`"');
          }
          esc = value;
        }
        directives[key] = value;
        continue;
      }
      inDirectives = false;
    }
    if (first === '' || first.charCodeAt(0) === 35 /* # */) {
      // comments right above an instruction (a blank line or an empty `#` ends a run), for
      // BuildKit's InvalidDefinitionDescription check
      const comment = first === '' ? '' : first.slice(1).trim();
      if (comment === '') comments = [];
      else comments.push(comment);
      continue;
    }
    let { text: logical, more } = trimContinuation(first, esc);
    let endLine = lineNo;
    let guard = 0;
    let emptyContinuation = false;
    while (more && i < n) {
      if (++guard > 10_000_000) break;
      checkLength(i);
      const cont = lines[i]!.text;
      i++;
      endLine = i;
      if (isCommentLine(cont)) continue;
      if (isBlankLine(cont)) {
        emptyContinuation = true;
        continue;
      }
      const piece = trimContinuation(cont, esc);
      logical += piece.text;
      more = piece.more;
    }
    // one per instruction, at its last continued line, as BuildKit's parser reports it
    if (emptyContinuation) warnings.push({ code: 'NoEmptyContinuation', message: 'Empty continuation line', line: endLine });
    const column = phys.text.length - first.length + 1;
    const node = buildNode(logical, { file, esc, startLine: lineNo, endLine, column, firstLine: phys.text });
    if (node === undefined) continue;
    const openers = heredocOpeners(node, file);
    for (const doc of openers) {
      let body = '';
      let terminated = false;
      while (i < n) {
        checkLength(i);
        const line = lines[i]!;
        i++;
        endLine = i;
        const candidate = doc.chomp ? line.text.replace(/^\t+/, '') : line.text;
        if (candidate === doc.name) {
          terminated = true;
          break;
        }
        body += line.raw.endsWith('\n') ? line.raw : line.raw + '\n';
      }
      if (!terminated) {
        fail('UnterminatedHeredoc', { file, line: lineNo, column, endLine }, `unterminated heredoc: no line "${doc.name}" before the end of the file`, `end the heredoc with a line that is exactly "${doc.name}"`);
      }
      doc.body = body;
    }
    node.endLine = endLine;
    if (comments.length > 0) node.comments = comments;
    comments = [];
    nodes.push(node);
  }
  return { escape: esc, directives, nodes, warnings };
}

function isBlankLine(s: string): boolean {
  for (let k = 0; k < s.length; k++) if (!isSpace(s.charCodeAt(k))) return false;
  return true;
}
