/** Expansion that records which variables were found and which were not (BuildKit's ProcessWordWithMatches). */
import { processWord, type ShellOptions } from '../shell.js';

export interface Expansion {
  result: string;
  matched: Set<string>;
  unmatched: Set<string>;
}

/** `undefined` when the word does not expand (the build reports that error itself). */
export function expandTracked(word: string, env: (name: string) => string | undefined, opt: ShellOptions): Expansion | undefined {
  const matched = new Set<string>();
  const unmatched = new Set<string>();
  const lookup = (name: string): string | undefined => {
    const v = env(name);
    (v === undefined ? unmatched : matched).add(name);
    return v;
  };
  try {
    return { result: processWord(word, lookup, opt), matched, unmatched };
  } catch {
    return undefined;
  }
}

function levenshtein(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/**
 * BuildKit's `suggest.Search` (case-sensitive): the closest option at edit distance below 3,
 * nothing when the value itself is an option. Options are tried in sorted order so that ties
 * are decided the same way every time.
 */
export function suggest(value: string, options: Iterable<string>): string {
  let match = '';
  let min = 3;
  for (const opt of [...new Set(options)].sort()) {
    if (opt === value) return '';
    const d = levenshtein(value, opt);
    if (d < min) {
      match = opt;
      min = d;
    }
  }
  return match;
}
