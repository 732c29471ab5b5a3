/** Expansion bound to an instruction: shell errors become ParseErrors at that node. */
import type { Dockerfile, Node } from './ast.js';
import { fail } from './errors.js';
import { at } from './instructions.js';
import { MAX_EXPANDED_WORD, processWord, processWords, ShellError, type EnvLookup, type ShellOptions } from './shell.js';

export type Expand = (word: string) => string;

const HINTS = {
  syntax: 'check the ${...} syntax: ${VAR}, ${VAR:-default}, ${VAR:+alt}, ${VAR#prefix}, ${VAR%suffix}, ${VAR/from/to}',
  required: 'pass the variable with --build-arg or give it a value with ARG/ENV',
  limit: `a value this long cannot reach a RUN (Linux limits one argument or environment string to ${MAX_EXPANDED_WORD} bytes); put the data in a file in the build context`,
} as const;

const CODES = { syntax: 'BadSubstitution', required: 'RequiredVariable', limit: 'WordTooLong' } as const;

function wrap<T>(df: Pick<Dockerfile, 'file'>, node: Node, word: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof ShellError) {
      fail(CODES[e.kind], at(node, df.file, word.includes('$') ? word.slice(0, Math.max(1, word.indexOf('$') + 1)) : word), `failed to process ${JSON.stringify(word)}: ${e.message}`, HINTS[e.kind]);
    }
    throw e;
  }
}

export function expander(df: Pick<Dockerfile, 'file' | 'escape'>, node: Node, env: EnvLookup, extra: Partial<ShellOptions> = {}): Expand {
  const opt: ShellOptions = { escape: df.escape, ...extra };
  return (word) => (word.includes('$') || word.includes('\\') || word.includes('`') || word.includes('"') || word.includes("'") ? wrap(df, node, word, () => processWord(word, env, opt)) : word);
}

export function wordsExpander(df: Pick<Dockerfile, 'file' | 'escape'>, node: Node, env: EnvLookup): (word: string) => string[] {
  const opt: ShellOptions = { escape: df.escape };
  return (word) => wrap(df, node, word, () => processWords(word, env, opt));
}
