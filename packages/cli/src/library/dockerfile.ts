import { readFileSync } from 'node:fs';
import { statOrUndefined } from '@hoist/oci';
import * as path from 'node:path';
import { UsageError } from '../errors.js';

/** A Dockerfile as a build reads it: the path shown in messages, its text and its ignore file. */
export interface DockerfileSource {
  path: string;
  text: string;
  dockerignore?: string;
}

/**
 * Locate the Dockerfile and its ignore file as Docker does (`<name>.dockerignore` wins over the
 * context's `.dockerignore`). `file` is a path (default `<contextDir>/Dockerfile`) or `-` for stdin.
 */
export async function readDockerfile(contextDir: string, file?: string): Promise<DockerfileSource> {
  const dfPath = file === '-' ? '-' : path.resolve(file ?? path.join(contextDir, 'Dockerfile'));
  // synchronous on purpose (issue 16): three small files at the start of every build; measured
  // in a fresh process, 0.2 ms this way against 0.7-0.9 ms awaited, one after the other or all
  // at once alike (each awaited readFile is four thread-pool round trips: open, stat, read, close)
  const optional = (f: string): string | undefined => {
    try {
      return readFileSync(f, 'utf8');
    } catch {
      return undefined;
    }
  };
  const text = dfPath === '-' ? await readStdin().catch(() => undefined) : optional(dfPath);
  if (text === undefined) throw new UsageError(`cannot read Dockerfile ${dfPath}: no such file; pass -f PATH or add a Dockerfile to ${contextDir}`);
  const own = dfPath === '-' ? undefined : optional(`${dfPath}.dockerignore`);
  const shared = own === undefined ? optional(path.join(contextDir, '.dockerignore')) : undefined;
  const dockerignore = own ?? shared;
  const shown = dfPath === '-' ? '-' : path.relative(process.cwd(), dfPath) || dfPath;
  return dockerignore !== undefined ? { path: shown, text, dockerignore } : { path: shown, text };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The build context directory, absolute; a UsageError when it is not a directory. */
export async function contextDirectory(context: string): Promise<string> {
  const dir = path.resolve(context);
  // synchronous: see prepareContext
  if (!statOrUndefined(dir)?.isDirectory()) throw new UsageError(`build context ${context} is not a directory`);
  return dir;
}
