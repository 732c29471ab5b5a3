/** Typed errors of the parser. Every rejected Dockerfile ends in a `ParseError`. */

export type ParseErrorCode =
  | 'EmptyDockerfile'
  | 'LineTooLong'
  | 'InvalidDirective'
  | 'DuplicateDirective'
  | 'UnterminatedHeredoc'
  | 'InvalidHeredoc'
  | 'InvalidJson'
  | 'UnknownInstruction'
  | 'NoBuildStage'
  | 'UnknownFlag'
  | 'InvalidFlag'
  | 'DuplicateFlag'
  | 'MissingArgument'
  | 'InvalidFrom'
  | 'InvalidStageName'
  | 'DuplicateStageName'
  | 'InvalidMount'
  | 'InvalidNetwork'
  | 'InvalidSecurity'
  | 'InvalidHealthcheck'
  | 'InvalidOnbuild'
  | 'InvalidShell'
  | 'InvalidChmod'
  | 'InvalidPort'
  | 'InvalidSignal'
  | 'InvalidEnv'
  | 'InvalidPlatform'
  | 'BadSubstitution'
  | 'RequiredVariable'
  | 'WordTooLong'
  | 'EmptyBaseName'
  | 'UnknownTarget'
  | 'UnknownStage'
  | 'ForwardReference'
  | 'StageCycle'
  | 'InvalidCheckOption';

export interface ParseErrorInit {
  code: ParseErrorCode;
  message: string;
  hint: string;
  file: string;
  line: number;
  column?: number;
  endLine?: number;
  cause?: unknown;
}

export class ParseError extends Error {
  readonly code: ParseErrorCode;
  readonly file: string;
  /** 1-based; 0 when the error concerns the whole file (no line). */
  readonly line: number;
  /** 1-based column of the offending text on `line`. */
  readonly column: number;
  readonly endLine: number;
  readonly hint: string;

  constructor(init: ParseErrorInit) {
    super(init.message.replace(/[\r\n]+/g, ' '), init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'ParseError';
    this.code = init.code;
    this.file = init.file;
    this.line = init.line;
    this.column = init.column ?? 1;
    this.endLine = init.endLine ?? init.line;
    this.hint = init.hint;
  }
}

/** Where an error happened, carried through helpers that do not know the file. */
export interface Location {
  file: string;
  line: number;
  column: number;
  endLine?: number;
}

export function fail(code: ParseErrorCode, at: Location, message: string, hint: string): never {
  throw new ParseError({ code, message, hint, file: at.file, line: at.line, column: at.column, endLine: at.endLine });
}

/** Renders an error like a compiler: location, message, the offending line with a caret, hint. */
export function formatParseError(err: ParseError, sourceText: string): string {
  const where = err.line > 0 ? `${err.file}:${err.line}:${err.column}` : err.file;
  const out = [`${where}: error[${err.code}]: ${err.message}`];
  if (err.line > 0) {
    const lines = sourceText.split('\n');
    const raw = (lines[err.line - 1] ?? '').replace(/\r$/, '');
    const shown = raw.length > 200 ? raw.slice(0, 200) + '…' : raw;
    const gutter = String(err.line);
    out.push(`${gutter} | ${shown.replace(/\t/g, ' ')}`);
    const col = Math.max(1, Math.min(err.column, shown.length + 1));
    out.push(`${' '.repeat(gutter.length)} | ${' '.repeat(col - 1)}^`);
  }
  out.push(`hint: ${err.hint}`);
  return out.join('\n') + '\n';
}

export function assertNever(x: never): never {
  throw new Error(`unexpected value: ${JSON.stringify(x)}`);
}
