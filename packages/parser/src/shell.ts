/**
 * Shell-word expansion as BuildKit's Dockerfile frontend does it (`$V`, `${V}`, the
 * `${V:-w}` family, `#`/`%` trimming, `/` replacement, quotes and escapes). Written from the
 * documented behaviour; see also `pattern.ts` for the glob patterns.
 */
import { isSpace } from './text.js';
import { trimPrefix, trimSuffix, replacePattern, PatternLimitError } from './pattern.js';
import { GlobBudgetError } from './glob.js';

export type EnvLookup = (name: string) => string | undefined;

export interface ShellOptions {
  /** Escape character (`\` or a backtick). */
  escape: string;
  /** Keep quote characters in the result. */
  rawQuotes?: boolean;
  /** Keep escape characters in the result. */
  rawEscapes?: boolean;
  /** Leave references to unset variables as written. */
  skipUnset?: boolean;
  /** Treat quotes as ordinary characters (heredoc bodies). */
  skipProcessQuotes?: boolean;
}

/**
 * The longest text one word may expand to (unless the word itself is longer): Linux's
 * MAX_ARG_STRLEN (32 pages, execve(2)), the longest single argument or environment string a
 * RUN can receive. BuildKit's lexer has no bound of its own, so chained doublings
 * (`ARG V2=$V1$V1`) grow exponentially there; here they end in a ParseError at their line.
 */
export const MAX_EXPANDED_WORD = 131_072;

export class ShellError extends Error {
  constructor(
    message: string,
    readonly kind: 'syntax' | 'required' | 'limit' = 'syntax',
  ) {
    super(message);
    this.name = 'ShellError';
  }
}

const SPECIAL_PARAMS = new Set(['@', '*', '#', '?', '-', '$', '!', '0']);
const NAME_CHAR = /^[\p{L}\p{Nd}_]$/u;
const DIGIT = /^\p{Nd}$/u;

function guard(f: () => string): string {
  try {
    return f();
  } catch (e) {
    if (e instanceof GlobBudgetError) throw new ShellError(`substitution pattern too expensive: ${e.message}`);
    if (e instanceof PatternLimitError) throw tooLong(e.limit);
    throw e;
  }
}

function tooLong(limit: number): ShellError {
  return new ShellError(`the expanded word is longer than ${limit} characters`, 'limit');
}

class Words {
  words: string[] = [];
  word = '';
  inWord = false;
  addChar(ch: string): void {
    if (isSpace(ch.charCodeAt(0))) {
      if (this.inWord && this.word.length > 0) {
        this.words.push(this.word);
        this.word = '';
        this.inWord = false;
      }
    } else this.addRaw(ch);
  }
  addRaw(s: string): void {
    this.word += s;
    this.inWord = true;
  }
  addString(s: string): void {
    for (const ch of s) this.addChar(ch);
  }
  finish(): string[] {
    if (this.word.length > 0) this.words.push(this.word);
    this.word = '';
    return this.words;
  }
}

class Lexer {
  private pos = 0;
  private rawEscapes: boolean;
  private readonly escCode: number;
  /** Longest text any part of this word may expand to (see MAX_EXPANDED_WORD). */
  private readonly limit: number;

  constructor(
    private readonly src: string,
    private readonly env: EnvLookup,
    private readonly opt: ShellOptions,
    private readonly wantWords: boolean,
  ) {
    this.rawEscapes = opt.rawEscapes === true;
    this.escCode = opt.escape.charCodeAt(0);
    this.limit = Math.max(MAX_EXPANDED_WORD, src.length);
  }

  /** Text appended by an expansion: fails once it passes the limit, before it can grow further. */
  private checked(text: string): string {
    if (text.length > this.limit) throw tooLong(this.limit);
    return text;
  }

  private peek(): string | undefined {
    if (this.pos >= this.src.length) return undefined;
    const c = this.src.codePointAt(this.pos)!;
    return String.fromCodePoint(c);
  }

  private next(): string | undefined {
    const ch = this.peek();
    if (ch !== undefined) this.pos += ch.length;
    return ch;
  }

  run(): { word: string; words: string[] } {
    return this.stopOn(undefined, this.rawEscapes);
  }

  private isSpecial(c: number, stop: number): boolean {
    return c === 0x24 || c === 0x27 || c === 0x22 || c === this.escCode || c === stop;
  }

  /** Processes until `stop` (consumed) or the end; returns the text and the split words. */
  private stopOn(stop: string | undefined, rawEscapes: boolean): { word: string; words: string[] } {
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      let result = '';
      const words = this.wantWords ? new Words() : undefined;
      const esc = this.opt.escape;
      const src = this.src;
      const n = src.length;
      const stopCode = stop === undefined ? -1 : stop.charCodeAt(0);
      const quotes = this.opt.skipProcessQuotes !== true;
      while (this.pos < n) {
        const c = src.charCodeAt(this.pos);
        if (c === stopCode) {
          this.pos++;
          return { word: result, words: words ? words.finish() : [] };
        }
        if (c === 0x24) {
          const v = this.dollar();
          result = this.checked(result + v);
          words?.addString(v);
          continue;
        }
        if ((c === 0x27 || c === 0x22) && quotes) {
          const v = c === 0x27 ? this.singleQuote() : this.doubleQuote();
          result = this.checked(result + v);
          words?.addRaw(v);
          continue;
        }
        if (c === this.escCode) {
          this.pos++;
          if (this.rawEscapes) {
            words?.addRaw(esc);
            result += esc;
          }
          const nx = this.next();
          if (nx === undefined) break;
          words?.addRaw(nx);
          result += nx;
          continue;
        }
        let j = this.pos + 1;
        while (j < n && !this.isSpecial(src.charCodeAt(j), stopCode)) j++;
        const chunk = src.slice(this.pos, j);
        this.pos = j;
        result = this.checked(result + chunk);
        words?.addString(chunk);
      }
      if (stop !== undefined) throw new ShellError(`unexpected end of statement while looking for matching ${stop}`);
      return { word: result, words: words ? words.finish() : [] };
    } finally {
      this.rawEscapes = saved;
    }
  }

  private singleQuote(): string {
    const close = this.src.indexOf("'", this.pos + 1);
    if (close < 0) throw new ShellError('unexpected end of statement while looking for matching single-quote');
    const body = this.src.slice(this.opt.rawQuotes ? this.pos : this.pos + 1, this.opt.rawQuotes ? close + 1 : close);
    this.pos = close + 1;
    return body;
  }

  private doubleQuote(): string {
    let out = this.opt.rawQuotes ? '"' : '';
    this.pos++;
    const src = this.src;
    const n = src.length;
    const esc = this.opt.escape;
    for (;;) {
      if (this.pos >= n) throw new ShellError('unexpected end of statement while looking for matching double-quote');
      const c = src.charCodeAt(this.pos);
      if (c === 0x22) {
        this.pos++;
        return this.opt.rawQuotes ? out + '"' : out;
      }
      if (c === 0x24) {
        out = this.checked(out + this.dollar());
        continue;
      }
      if (c === this.escCode) {
        this.pos++;
        if (this.pos >= n) continue;
        const nx = src.charCodeAt(this.pos);
        if (nx === 0x22 || nx === 0x24 || nx === this.escCode) {
          if (this.rawEscapes) out += esc;
          out += src[this.pos]!;
          this.pos++;
          continue;
        }
        out += esc;
        continue;
      }
      let j = this.pos + 1;
      while (j < n) {
        const d = src.charCodeAt(j);
        if (d === 0x22 || d === 0x24 || d === this.escCode) break;
        j++;
      }
      out += src.slice(this.pos, j);
      this.pos = j;
    }
  }

  private name(): string {
    // ASCII fast path: [A-Za-z_][A-Za-z0-9_]*
    const src = this.src;
    const c0 = src.charCodeAt(this.pos);
    if ((c0 >= 65 && c0 <= 90) || (c0 >= 97 && c0 <= 122) || c0 === 95) {
      let j = this.pos + 1;
      for (;;) {
        const c = src.charCodeAt(j);
        if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 95) j++;
        else break;
      }
      if (j >= src.length || src.charCodeAt(j) < 0x80) {
        const name = src.slice(this.pos, j);
        this.pos = j;
        return name;
      }
    }
    let name = '';
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) return name;
      if (name === '' && DIGIT.test(ch)) {
        while (this.peek() !== undefined && DIGIT.test(this.peek()!)) name += this.next()!;
        return name;
      }
      if (name === '' && SPECIAL_PARAMS.has(ch)) return this.next()!;
      if (!NAME_CHAR.test(ch)) return name;
      name += this.next()!;
    }
  }

  private lookup(name: string): string | undefined {
    return this.env(name);
  }

  private depth = 0;

  private dollar(): string {
    if (++this.depth > 64) throw new ShellError('syntax error: substitutions nested too deeply');
    try {
      return this.dollarInner();
    } finally {
      this.depth--;
    }
  }

  private dollarInner(): string {
    this.next(); // $
    if (this.peek() !== '{') {
      const name = this.name();
      if (name === '') return '$';
      const v = this.lookup(name);
      if (v === undefined && this.opt.skipUnset) return '$' + name;
      return v ?? '';
    }
    this.next(); // {
    const first = this.peek();
    if (first === undefined) throw new ShellError("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new ShellError('syntax error: bad substitution');
    const name = this.name();
    let op = this.next();
    if (op === undefined) throw new ShellError("syntax error: missing '}'");
    if (op === '}') {
      const v = this.lookup(name);
      if (v === undefined && this.opt.skipUnset) return '${' + name + '}';
      return v ?? '';
    }
    if (op === '/') return this.replace(name);
    let colon = false;
    let written = op;
    if (op === ':') {
      colon = true;
      op = this.next();
      if (op === undefined) throw new ShellError("syntax error: missing '}'");
      written += op;
      if (op !== '-' && op !== '+' && op !== '?') throw new ShellError(`unsupported modifier (${written}) in substitution`);
    }
    if (op !== '-' && op !== '+' && op !== '?' && op !== '#' && op !== '%') {
      throw new ShellError(`unsupported modifier (${written}) in substitution`);
    }
    let word: string;
    try {
      word = this.stopOn('}', op === '#' || op === '%').word;
    } catch (e) {
      if (this.peek() === undefined) throw new ShellError("syntax error: missing '}'");
      throw e;
    }
    const value = this.lookup(name);
    if (value === undefined && this.opt.skipUnset) return '${' + name + written + word + '}';
    const unset = value === undefined || (colon && value === '');
    switch (op) {
      case '-':
        return unset ? word : value!;
      case '+':
        return unset ? '' : word;
      case '?':
        if (value === undefined) throw new ShellError(`${name}: ${word || 'is not allowed to be unset'}`, 'required');
        if (colon && value === '') throw new ShellError(`${name}: ${word || 'is not allowed to be empty'}`, 'required');
        return value;
      default: {
        const greedy = word.startsWith(op);
        const pat = greedy ? word.slice(1) : word;
        const v = value ?? '';
        return guard(() => (op === '#' ? trimPrefix(pat, v, greedy, this.opt.escape) : trimSuffix(pat, v, greedy, this.opt.escape)));
      }
    }
  }

  private replace(name: string): string {
    const all = this.peek() === '/';
    if (all) this.next();
    let pattern: string;
    try {
      pattern = this.stopOn('/', true).word;
    } catch (e) {
      if (this.peek() === undefined) throw new ShellError("syntax error: missing '/' in ${}");
      throw e;
    }
    let replacement: string;
    try {
      replacement = this.stopOn('}', true).word;
    } catch (e) {
      if (this.peek() === undefined) throw new ShellError("syntax error: missing '}'");
      throw e;
    }
    const value = this.lookup(name);
    if (value === undefined && this.opt.skipUnset) return '${' + name + '/' + (all ? '/' : '') + pattern + '/' + replacement + '}';
    return this.checked(guard(() => replacePattern(value ?? '', pattern, replacement, { all, escape: this.opt.escape, maxLength: this.limit })));
  }
}

/** Expands one word: quotes removed, escapes resolved, variables substituted; spaces kept. */
export function processWord(word: string, env: EnvLookup, opt: ShellOptions): string {
  return new Lexer(word, env, opt, false).run().word;
}

/** Expands and splits into words (unquoted spaces and expanded values split). */
export function processWords(word: string, env: EnvLookup, opt: ShellOptions): string[] {
  return new Lexer(word, env, opt, true).run().words;
}

export const noEnv: EnvLookup = () => undefined;
