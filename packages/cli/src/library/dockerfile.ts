import { promises as fsp } from 'node:fs';
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
  const optional = (f: string): Promise<string | undefined> => fsp.readFile(f, 'utf8').catch(() => undefined);
  // the three reads at once (issue 16); the Dockerfile's own ignore file wins
  const [read, own, shared] = await Promise.all([
    (dfPath === '-' ? readStdin() : fsp.readFile(dfPath, 'utf8')).then(
      (t) => ({ text: t }),
      () => undefined,
    ),
    dfPath === '-' ? undefined : optional(`${dfPath}.dockerignore`),
    optional(path.join(contextDir, '.dockerignore')),
  ]);
  if (!read) throw new UsageError(`cannot read Dockerfile ${dfPath}: no such file; pass -f PATH or add a Dockerfile to ${contextDir}`);
  const { text } = read;
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
  const st = await fsp.stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) throw new UsageError(`build context ${context} is not a directory`);
  return dir;
}
