/**
 * COPY/ADD source wildcards, as BuildKit resolves them: Go's `filepath.Match` for the names of
 * one directory (`*` and `?` never cross `/`, `[...]` classes negated with `^`, `\` escapes).
 * Runs on the NFA of glob.ts, so a hostile pattern cannot blow up.
 */
import { codePoints, Glob, type GlobToken } from './glob.js';

/** Whether a source path has wildcards (`*`, `?`, `[`; a `\` hides the next character). */
export function hasWildcards(p: string): boolean {
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '\\') i++;
    else if (c === '*' || c === '?' || c === '[') return true;
  }
  return false;
}

/** One class character (`\` escapes it); `-` and `]` cannot start a range end, as in Go. */
function classChar(cps: number[], i: number): [number, number] | undefined {
  let c = cps[i];
  if (c === undefined || c === 0x2d || c === 0x5d) return undefined;
  if (c === 0x5c) {
    c = cps[++i];
    if (c === undefined) return undefined;
  }
  return [c, i + 1];
}

/** `[...]` starting at `open`: the token and the index after `]`, or undefined (bad pattern). */
function goClass(cps: number[], open: number): [GlobToken, number] | undefined {
  let i = open + 1;
  const neg = cps[i] === 0x5e;
  if (neg) i++;
  const ranges: number[] = [];
  for (;;) {
    if (cps[i] === 0x5d && ranges.length > 0) return [{ k: 'class', neg, ranges }, i + 1];
    const lo = classChar(cps, i);
    if (!lo) return undefined;
    let hi: [number, number] = lo;
    if (cps[lo[1]] === 0x2d) {
      const h = classChar(cps, lo[1] + 1);
      if (!h) return undefined;
      hi = h;
    }
    ranges.push(lo[0], hi[0]);
    i = hi[1];
  }
}

function goTokens(pattern: string): GlobToken[] | undefined {
  const cps = codePoints(pattern);
  const out: GlobToken[] = [];
  for (let i = 0; i < cps.length; i++) {
    const c = cps[i]!;
    if (c === 0x2a) out.push({ k: 'star', slash: false });
    else if (c === 0x3f) out.push({ k: 'one', slash: false });
    else if (c === 0x5c) {
      if (i + 1 >= cps.length) return undefined;
      out.push({ k: 'lit', c: cps[++i]! });
    } else if (c === 0x5b) {
      const cls = goClass(cps, i);
      if (!cls) return undefined;
      out.push(cls[0]);
      i = cls[1] - 1;
    } else out.push({ k: 'lit', c });
  }
  return out;
}

/**
 * A matcher for Go's `filepath.Match(pattern, name)`. A malformed pattern matches nothing
 * (BuildKit ignores the error and copies nothing for it).
 */
export function goPathMatcher(pattern: string): (name: string) => boolean {
  const toks = goTokens(pattern);
  if (!toks) return () => false;
  // a fresh step budget for each name: the budget bounds one evaluation, not a whole walk
  return (name) => new Glob(toks).matches(codePoints(name));
}
