import { ExportError } from '@hoist/exporter';
import { ExitError, UsageError } from '../errors.js';

/** Export error codes that are the user's input: exit 2 like other usage errors. */
const USAGE_CODES = new Set(['OUTPUT_INVALID', 'SIZE_INVALID', 'DEST_EXISTS', 'DEST_TERMINAL', 'IMAGE_UNKNOWN']);

/**
 * Run `fn`, reporting an ExportError the way the CLI reports errors: user mistakes as usage
 * errors (exit 2), the rest as `ERROR: ...` with the hint (exit 1). Other errors pass through.
 */
export async function exportErrors<T>(fn: () => Promise<T>, write: (s: string) => void = (s) => process.stderr.write(s)): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (!(e instanceof ExportError)) throw e;
    if (USAGE_CODES.has(e.code)) throw new UsageError(e.hint ? `${e.message}; ${e.hint}` : e.message);
    write(`ERROR: ${e.message}\n${e.hint ? `  ${e.hint}\n` : ''}`);
    throw new ExitError(e.code === 'ABORTED' ? 130 : 1, e.message);
  }
}
