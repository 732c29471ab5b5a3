import { BuildError } from './errors.js';

/** A host directory and how a message should name paths below it. */
export interface PathView {
  host: string;
  /** `image`: the directory is a mounted root, its paths are named as the image sees them. */
  as: 'image' | 'store';
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * `message` with every host path below the given directories rewritten: a mounted root's paths
 * as the image sees them (`<root>/etc/x` -> `/etc/x`), anything else in the store as `<store>/…`.
 * More specific directories first (a mount root lies inside the store).
 */
export function hideHostPaths(message: string, views: PathView[]): string {
  let out = message;
  for (const v of [...views].sort((a, b) => b.host.length - a.host.length)) {
    const host = v.host.replace(/\/+$/, '');
    if (host === '') continue;
    const re = new RegExp(`${escape(host)}(?=[/'"\\s:,)]|$)(/?)`, 'g');
    out = out.replace(re, (_m, slash: string) => (v.as === 'image' ? '/' : `<store>${slash}`));
  }
  return out;
}

/**
 * A COPY/ADD failure as a BuildError whose message names no host path of the store: typed
 * errors keep their code, anything else (a raw fs error) becomes STEP_FAILED.
 */
export function copyStepError(e: unknown, views: PathView[]): BuildError {
  const raw = (e as { message?: unknown } | undefined)?.message;
  const message = hideHostPaths(typeof raw === 'string' ? raw : String(e), views);
  if (e instanceof BuildError) {
    return new BuildError(e.code, message, {
      cause: e.cause,
      ...(e.location ? { location: e.location } : {}),
      ...(e.outputTail ? { outputTail: e.outputTail } : {}),
      ...(e.exitCode !== undefined ? { exitCode: e.exitCode } : {}),
    });
  }
  return new BuildError('STEP_FAILED', message, { cause: e });
}

/** How a COPY/ADD error names host paths: mounted roots as the image sees them, the rest of the store as `<store>`. */
export function copyPathViews(storeRoot: string, roots: string[]): PathView[] {
  return [...roots.map((host) => ({ host, as: 'image' as const })), { host: storeRoot, as: 'store' as const }];
}
