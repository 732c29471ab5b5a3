import { readFileSync } from 'node:fs';

/**
 * Where the `hoist` bin puts NODE_EXTRA_CA_CERTS (issue 16). Node reads and parses that file as
 * it starts, before any code runs: with a system bundle of ~140 certificates that is ~38 ms of
 * every start, also of the many commands that make no TLS connection. The bin (a shell script,
 * packages/cli/bin/hoist) therefore starts Node without it and passes the file on under this
 * name; hoist adds its certificates to the roots of every TLS connection it makes (registries,
 * ADD and context URLs), which is what NODE_EXTRA_CA_CERTS does, only when one is made.
 */
const DEFERRED_CA_ENV = 'HOIST_EXTRA_CA_CERTS';

/**
 * The deferred file's PEM text, or none when there is no such file or it cannot be read (as
 * Node ignores an unreadable NODE_EXTRA_CA_CERTS, with a warning at start).
 */
export function deferredCaCerts(env: NodeJS.ProcessEnv = process.env): string[] {
  const f = env[DEFERRED_CA_ENV];
  if (!f) return [];
  try {
    return [readFileSync(f, 'utf8')];
  } catch {
    return [];
  }
}
