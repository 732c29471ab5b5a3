import { BuildError } from '@hoist/builder';
import { OciError, currentUserNamespace } from '@hoist/oci';
import { CacheError } from '@hoist/cache';
import { ParseError, formatParseError } from '@hoist/parser';
import { RegistryError } from '@hoist/registry-client';
import { readFileSync } from 'node:fs';
import { UsageError } from './errors.js';

/** Print an error the way a user can act on it and return the exit code (never a stack trace for user mistakes). */
export function reportError(e: unknown, write: (s: string) => void): number {
  if (e instanceof UsageError) {
    write(`hoist: ${e.message}\n`);
    return 2;
  }
  if (e instanceof ParseError) {
    let text = '';
    try {
      text = readFileSync(e.file, 'utf8');
    } catch {
      // the file may be stdin
    }
    write(formatParseError(e, text) + '\n');
    return 2;
  }
  if (e instanceof BuildError) {
    const loc = e.location;
    if (e.outputTail && e.outputTail.length > 0) {
      write(`------\n${e.outputTail.map((l) => ` > ${l}`).join('\n')}\n------\n`);
    }
    if (loc) write(`${loc.file}:${loc.line}\n--------------------\n ${loc.line} | >>> ${loc.instruction}\n--------------------\n`);
    write(`ERROR: ${loc ? `failed to solve: ${loc.step}: ` : ''}${e.message}\n`);
    return e.code === 'CANCELLED' ? 130 : 1;
  }
  if (e instanceof RegistryError) {
    write(`ERROR: ${e.message}\n`);
    return 1;
  }
  if (e instanceof CacheError) {
    write(`ERROR: ${e.message}\n`);
    return e.code === 'CACHE_SPEC_INVALID' ? 2 : 1;
  }
  if (e instanceof OciError) {
    write(`ERROR: ${e.message}\n`);
    return e.code === 'REFERENCE_INVALID' ? 2 : 1;
  }
  const err = e as Error & { code?: unknown; hint?: unknown };
  if ((err?.code === 'EACCES' || err?.code === 'EPERM') && currentUserNamespace()) {
    write(
      `ERROR: ${err.message}\nhint: hoist runs rootless (in a user namespace) and may only use files of your own and of your subordinate ids; ` +
        'a store made by root or another user cannot be used: pass --root DIR of your own, or unset HOIST_ROOT\n',
    );
    return 1;
  }
  // typed errors of the other packages (SnapshotError, ExportError, ...) carry a stable code
  if (err instanceof Error && typeof err.code === 'string' && /^[A-Z][A-Z0-9_]+$/.test(err.code)) {
    write(`ERROR: ${err.message}${typeof err.hint === 'string' ? `\nhint: ${err.hint}` : ''}\n`);
    return 1;
  }
  write(`hoist: internal error (please report it): ${err?.stack ?? String(e)}\n`);
  return 70;
}
