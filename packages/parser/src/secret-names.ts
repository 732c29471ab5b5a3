import type { Dockerfile } from './ast.js';
import type { ParseWarning } from './plan-types.js';

/**
 * BuildKit's `SecretsUsedInArgOrEnv` check: an ARG or ENV whose name has, as one of its
 * `_`-separated words, a word that names a secret (case-insensitive) — unless another of its
 * words marks it as public (`PUBLIC_KEY`, `GPG_KEY_FILE`, `TOKEN_VERSION`). Its value would
 * stay in the image config and history: a secret belongs in `RUN --mount=type=secret`.
 */
const SECRET_WORDS = new Set(['apikey', 'auth', 'credential', 'credentials', 'key', 'password', 'pword', 'passwd', 'secret', 'token']);
const PUBLIC_WORDS = new Set(['public', 'file', 'version']);

export const SECRETS_RULE = 'SecretsUsedInArgOrEnv';

export function looksLikeSecret(name: string): boolean {
  const words = name.toLowerCase().split('_');
  return words.some((w) => SECRET_WORDS.has(w)) && !words.some((w) => PUBLIC_WORDS.has(w));
}

function warning(instruction: 'ARG' | 'ENV', name: string, line: number): ParseWarning {
  return { code: SECRETS_RULE, message: `Do not use ARG or ENV instructions for sensitive data (${instruction} ${JSON.stringify(name)})`, line };
}

/** One warning per ARG or ENV name that looks like a secret, global ARGs included, in file order. */
export function secretNameWarnings(df: Dockerfile): ParseWarning[] {
  const out: ParseWarning[] = [];
  for (const m of df.metaArgs) for (const a of m.args) if (looksLikeSecret(a.name)) out.push(warning('ARG', a.name, m.node.startLine));
  for (const st of df.stages) {
    for (const c of st.commands) {
      const ins = c.instruction;
      if (ins.kind === 'arg') for (const a of ins.args) if (looksLikeSecret(a.name)) out.push(warning('ARG', a.name, c.node.startLine));
      if (ins.kind === 'env') for (const [k] of ins.pairs) if (looksLikeSecret(k)) out.push(warning('ENV', k, c.node.startLine));
    }
  }
  return out;
}
