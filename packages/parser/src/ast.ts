/**
 * The syntax tree: one `Node` per logical instruction, split the way BuildKit's parser splits
 * it (keyword, flags, arguments), plus the typed but not yet expanded layer on top.
 */
import type { Instruction, ParseWarning } from './plan-types.js';

export interface RawHeredoc {
  /** Terminator with shell quoting removed. */
  name: string;
  /** False when any part of the terminator word was quoted. */
  expand: boolean;
  /** `<<-`: leading tabs are stripped from the body and the terminator line. */
  chomp: boolean;
  fd?: number;
  /** Body lines verbatim, each with its newline (terminator excluded). */
  body: string;
}

export interface Node {
  /** Keyword as written, lower-cased (`run`, `from`, ... or an unknown word). */
  keyword: string;
  /** Flag words (`--a=1`) with quotes removed, in source order. */
  flags: string[];
  /** Arguments after the instruction-specific splitting (see FORMAT.md §4). */
  args: string[];
  /** The arguments came from a JSON array. */
  json: boolean;
  /** Argument text after the flags, trimmed. */
  rest: string;
  /** The logical instruction text (continuations joined), trimmed. */
  original: string;
  startLine: number;
  endLine: number;
  /** 1-based column of the keyword on `startLine`. */
  column: number;
  /** The first physical line, for locating tokens in error messages. */
  firstLine: string;
  heredocs: RawHeredoc[];
  /** Comment lines directly above the instruction, `#` and blanks trimmed (none: absent). */
  comments?: string[];
  /** ONBUILD's wrapped instruction. */
  inner?: Node;
}

/** A typed instruction before expansion: values exactly as written. */
export interface Command {
  node: Node;
  instruction: Instruction;
}

export interface ArgDecl {
  name: string;
  /** Default as written (unexpanded); absent for `ARG NAME`. */
  value?: string;
}

export interface StageAst {
  node: Node;
  /** Base as written (unexpanded). */
  baseName: string;
  /** `--platform` as written (unexpanded). */
  platform?: string;
  /** `AS name` as written. */
  name?: string;
  commands: Command[];
}

export interface Dockerfile {
  file: string;
  /** `\` or a backtick. */
  escape: string;
  directives: Record<string, string>;
  nodes: Node[];
  /** ARGs before the first FROM, with their ARG node. */
  metaArgs: Array<{ node: Node; args: ArgDecl[] }>;
  stages: StageAst[];
  warnings: ParseWarning[];
  startLine: number;
  endLine: number;
}
