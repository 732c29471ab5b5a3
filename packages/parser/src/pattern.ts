/** Shell glob patterns of `${V#p}`, `${V%p}` and `${V/p/r}` (`*`, `?`, `[...]`, escapes). */
import { codePoints, fromCodePoints, Glob, parseClass, type GlobToken } from './glob.js';

/** A `${V//p/r}` result grew past the caller's `maxLength`. */
export class PatternLimitError extends Error {
  constructor(readonly limit: number) {
    super(`the replacement result is longer than ${limit} characters`);
  }
}

export function shellPattern(pattern: string, escape: string): GlobToken[] {
  const cps = codePoints(pattern);
  const esc = escape.codePointAt(0)!;
  const out: GlobToken[] = [];
  for (let i = 0; i < cps.length; i++) {
    const c = cps[i]!;
    if (c === esc && i + 1 < cps.length) out.push({ k: 'lit', c: cps[++i]! });
    else if (c === 0x2a) {
      if (out[out.length - 1]?.k !== 'star') out.push({ k: 'star', slash: true });
    } else if (c === 0x3f) out.push({ k: 'one', slash: true });
    else if (c === 0x5b) {
      const cls = parseClass(cps, i, true, esc);
      if (cls) {
        out.push(cls.token);
        i = cls.next - 1;
      } else out.push({ k: 'lit', c });
    } else out.push({ k: 'lit', c });
  }
  return out;
}

/** `${V#p}` / `${V##p}`: removes the shortest (or longest) prefix matching `p`. */
export function trimPrefix(pattern: string, value: string, greedy: boolean, escape: string): string {
  const cps = codePoints(value);
  const n = new Glob(shellPattern(pattern, escape)).prefix(cps, greedy);
  return n < 0 ? value : fromCodePoints(cps, n);
}

/** `${V%p}` / `${V%%p}`: removes the shortest (or longest) suffix matching `p`. */
export function trimSuffix(pattern: string, value: string, greedy: boolean, escape: string): string {
  const cps = codePoints(value).reverse();
  const tokens = shellPattern(pattern, escape).reverse();
  const n = new Glob(tokens).prefix(cps, greedy);
  if (n < 0) return value;
  cps.reverse();
  return fromCodePoints(cps, 0, cps.length - n);
}

/** `${V/p/r}` / `${V//p/r}`: replaces the first (or every) leftmost match. */
export function replacePattern(value: string, pattern: string, replacement: string, o: { all: boolean; escape: string; maxLength?: number }): string {
  const { all, escape } = o;
  const max = o.maxLength ?? Infinity;
  const cps = codePoints(value);
  const glob = new Glob(shellPattern(pattern, escape));
  let out = '';
  let pos = 0;
  let from = 0;
  while (from <= cps.length) {
    const m = glob.find(cps, from);
    if (!m) break;
    out += fromCodePoints(cps, pos, m[0]) + replacement;
    if (out.length > max) throw new PatternLimitError(max);
    pos = m[1];
    if (!all) break;
    if (m[1] === m[0]) {
      if (m[1] < cps.length) out += String.fromCodePoint(cps[m[1]]!);
      pos = m[1] + 1;
      from = m[1] + 1;
    } else from = m[1];
  }
  return pos >= cps.length ? out : out + fromCodePoints(cps, pos);
}
