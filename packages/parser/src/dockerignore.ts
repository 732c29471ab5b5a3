/**
 * `.dockerignore` matching with Docker's rules (moby/patternmatcher as BuildKit's context walk
 * uses it): patterns are cleaned (`path.Clean`, leading `/` dropped), `*` and `?` never cross
 * `/`, `**` crosses any number of directories, `!` re-includes, the last matching pattern wins,
 * and a pattern that matches a directory matches everything below it. The context root itself
 * is never excluded. The parser stays pure: it takes the file's text.
 */
import { ParseError } from './errors.js';
import { cleanPath } from './state.js';
import { codePoints, Glob, parseClass, type GlobToken } from './glob.js';

export interface DockerignorePattern {
  /** Cleaned pattern without the `!`. */
  pattern: string;
  /** `!pattern`: re-includes what earlier patterns excluded. */
  exclusion: boolean;
  /** 1-based line in the .dockerignore text. */
  line: number;
}

/** Where a top-down walk stands at one path: excluded or not, which patterns matched it or a parent. */
interface MatchState {
  readonly excluded: boolean;
  readonly hits: readonly boolean[];
}

export interface DockerignoreMatcher {
  readonly patterns: readonly DockerignorePattern[];
  /** Whether any `!` pattern exists (without one, an excluded directory can be skipped whole). */
  readonly hasExclusions: boolean;
  /**
   * Whether `path` (relative to the context, `/`-separated) is excluded from the context, as
   * BuildKit's context walk decides it from the top directory down. The root is never excluded.
   */
  matches(path: string): boolean;
  /** Whether some `!` pattern could re-include a path strictly below directory `dir`. */
  mayMatchUnder(dir: string): boolean;
  /** Convenience for walkers: `dir` is excluded and nothing below it can come back. */
  canSkipDir(dir: string): boolean;
}

interface Compiled extends DockerignorePattern {
  parts: string[];
  test: (path: string) => boolean;
}

/** Docker's pattern language: `*` and `?` stop at `/`, `**` spans directories, `\` escapes. */
function tokens(pattern: string): GlobToken[] {
  const cps = codePoints(pattern);
  const out: GlobToken[] = [];
  for (let i = 0; i < cps.length; i++) {
    const c = cps[i]!;
    if (c === 0x2a) {
      if (cps[i + 1] === 0x2a) {
        i++;
        if (cps[i + 1] === 0x2f) i++;
        out.push(i + 1 >= cps.length ? { k: 'star', slash: true } : { k: 'dirs' });
      } else out.push({ k: 'star', slash: false });
    } else if (c === 0x3f) out.push({ k: 'one', slash: false });
    else if (c === 0x5c) out.push({ k: 'lit', c: i + 1 < cps.length ? cps[++i]! : c });
    else if (c === 0x5b) {
      const cls = parseClass(cps, i, false, 0x5c);
      if (!cls) throw new Error(`syntax error in pattern ${JSON.stringify(pattern)}: missing ]`);
      out.push(cls.token);
      i = cls.next - 1;
    } else out.push({ k: 'lit', c });
  }
  return out;
}

/**
 * A pattern's test. As moby's matcher: a leading `**` followed by plain text is a suffix test
 * (`**.log` matches `a/b.log`, `**` + `/x` also matches `x`); otherwise a whole-path glob.
 */
function compile(pattern: string): (path: string) => boolean {
  const rest = pattern.slice(2);
  if (pattern.startsWith('**') && !/[*?[\]\\]/.test(rest)) {
    return (p) => p.endsWith(rest) || (rest.startsWith('/') && p === rest.slice(1));
  }
  const toks = tokens(pattern);
  if (toks.every((t) => t.k === 'lit')) {
    let literal = '';
    for (const t of toks) literal += String.fromCodePoint((t as { c: number }).c);
    return (p) => p === literal;
  }
  // a fresh step budget for each path: the budget bounds one evaluation, not a whole walk
  return (p) => new Glob(toks).matches(codePoints(p));
}

/** One path component against one pattern component (for directory pruning). */
function componentMatches(pat: string, name: string): boolean {
  return compile(pat)(name);
}

function normalizePath(p: string): string {
  const c = cleanPath(p.replace(/\\/g, '/'));
  return c.startsWith('/') ? c.slice(1) || '.' : c;
}

/** Reads `.dockerignore` text into patterns (comments, blank lines, `!`, cleaning). */
export function parseDockerignore(text: string, file = '.dockerignore'): DockerignorePattern[] {
  const out: DockerignorePattern[] = [];
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  lines.forEach((raw, k) => {
    if (raw.startsWith('#')) return;
    let p = raw.trim();
    if (p === '') return;
    const exclusion = p.startsWith('!');
    if (exclusion) p = p.slice(1).trim();
    if (p === '') {
      throw new ParseError({ code: 'InvalidDirective', file, line: k + 1, column: 1, message: 'illegal exclusion pattern: "!"', hint: 'write the path to re-include after the "!", e.g. !README.md' });
    }
    p = cleanPath(p);
    if (p.length > 1 && p.startsWith('/')) p = p.slice(1);
    out.push({ pattern: p, exclusion, line: k + 1 });
  });
  return out;
}

export function createDockerignoreMatcher(text: string, file = '.dockerignore'): DockerignoreMatcher {
  return matcherFor(parseDockerignore(text, file), file);
}

/**
 * The same matcher for a list of patterns given directly (`COPY --exclude=...`): no comment or
 * blank-line handling, but the same cleaning, `!` exceptions and matching rules.
 */
export function createPathMatcher(patterns: readonly string[], file = '--exclude'): DockerignoreMatcher {
  const list: DockerignorePattern[] = [];
  patterns.forEach((raw, k) => {
    let p = raw.trim();
    if (p === '') return;
    const exclusion = p.startsWith('!');
    if (exclusion) p = p.slice(1).trim();
    if (p === '') throw new ParseError({ code: 'InvalidDirective', file, line: k + 1, column: 1, message: 'illegal exclusion pattern: "!"', hint: 'write the path to re-include after the "!"' });
    p = cleanPath(p);
    if (p.length > 1 && p.startsWith('/')) p = p.slice(1);
    list.push({ pattern: p, exclusion, line: k + 1 });
  });
  return matcherFor(list, file);
}

/**
 * moby's `MatchesUsingParentResults`, the rule of BuildKit's context walk: a pattern that
 * matched the parent directory matches the path too; otherwise it is tested on the path itself,
 * skipped when it could not change the outcome (an inclusion once excluded, an exception while
 * included). The last pattern that matches decides.
 */
function stepState(compiled: readonly Compiled[], path: string, parent: MatchState | undefined): MatchState {
  let excluded = false;
  const hits = new Array<boolean>(compiled.length).fill(false);
  compiled.forEach((p, i) => {
    let hit = parent?.hits[i] ?? false;
    if (!hit) {
      if (p.exclusion !== excluded) return;
      hit = p.test(path);
    }
    hits[i] = hit;
    if (hit) excluded = !p.exclusion;
  });
  return { excluded, hits };
}

function matcherFor(list: DockerignorePattern[], file: string): DockerignoreMatcher {
  const compiled: Compiled[] = list.map((p) => {
    let test: (path: string) => boolean;
    try {
      test = compile(p.pattern);
    } catch (e) {
      throw new ParseError({ code: 'InvalidDirective', file, line: p.line, column: 1, message: (e as Error).message, hint: 'check the [ ] character classes of the pattern' });
    }
    return { ...p, parts: p.pattern.split('/'), test };
  });
  const hasExclusions = compiled.some((p) => p.exclusion);

  const matches = (path: string): boolean => {
    const file = normalizePath(path);
    if (file === '.' || file === '..' || file.startsWith('../')) return false; // the context root stays
    let state: MatchState | undefined;
    let prefix = '';
    for (const part of file.split('/')) {
      prefix = prefix === '' ? part : `${prefix}/${part}`;
      state = stepState(compiled, prefix, state);
    }
    return state!.excluded;
  };

  const mayMatchUnder = (dir: string): boolean => {
    const d = normalizePath(dir);
    const parts = d === '.' ? [] : d.split('/');
    return compiled.some((p) => {
      if (!p.exclusion) return false;
      for (let i = 0; i < parts.length; i++) {
        const pc = p.parts[i];
        if (pc === undefined) return true; // the pattern names an ancestor of dir
        if (pc.includes('**')) return true;
        if (!componentMatches(pc, parts[i]!)) return false;
      }
      return true;
    });
  };

  return {
    patterns: compiled.map(({ pattern, exclusion, line }) => ({ pattern, exclusion, line })),
    hasExclusions,
    matches,
    mayMatchUnder,
    canSkipDir: (dir) => matches(dir) && !mayMatchUnder(dir),
  };
}

/**
 * The ignore files BuildKit considers for a Dockerfile, in order of preference: the
 * Dockerfile-specific `<name>.dockerignore` next to it, then the context's `.dockerignore`.
 */
export function dockerignoreCandidates(dockerfilePath: string): string[] {
  const p = dockerfilePath.replace(/\\/g, '/');
  return [p + '.dockerignore', '.dockerignore'];
}
