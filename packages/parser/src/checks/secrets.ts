/**
 * BuildKit's `SecretsUsedInArgOrEnv` check: an ARG or ENV whose name has, as one of its
 * `_`-separated words, a word that names a secret (case-insensitive) — unless another of its
 * words marks it as public (`PUBLIC_KEY`, `GPG_KEY_FILE`, `TOKEN_VERSION`). Its value would
 * stay in the image config and history: a secret belongs in `RUN --mount=type=secret`.
 * Reported from dispatch.ts.
 */
const SECRET_WORDS = new Set(['apikey', 'auth', 'credential', 'credentials', 'key', 'password', 'pword', 'passwd', 'secret', 'token']);
const PUBLIC_WORDS = new Set(['public', 'file', 'version']);

export function looksLikeSecret(name: string): boolean {
  const words = name.toLowerCase().split('_');
  return words.some((w) => SECRET_WORDS.has(w)) && !words.some((w) => PUBLIC_WORDS.has(w));
}
