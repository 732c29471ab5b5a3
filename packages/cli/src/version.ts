import { readFileSync } from 'node:fs';

/** hoist's version, from the CLI package's package.json (found from `dist/…` as from the bundle). */
export function hoistVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === '@hoist/cli' && pkg.version) return pkg.version;
    } catch {
      // try the next place
    }
  }
  return 'unknown';
}
