/**
 * Which checks run and whether they fail the build: the `# check=skip=A,B;error=true` directive,
 * replaced as a whole by the `BUILDKIT_DOCKERFILE_CHECK` build arg when that is given (as
 * BuildKit's dockerui config does). Values as BuildKit's `ParseLintOptions` reads them.
 */
import { ParseError } from '../errors.js';

export interface CheckConfig {
  skipAll: boolean;
  skip: string[];
  experimentalAll: boolean;
  experimental: string[];
  error: boolean;
}

export const CHECK_BUILD_ARG = 'BUILDKIT_DOCKERFILE_CHECK';

const NONE: CheckConfig = { skipAll: false, skip: [], experimentalAll: false, experimental: [], error: false };

function parseBool(v: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  return undefined;
}

function list(v: string): { all: boolean; names: string[] } {
  const t = v.trim();
  return t === 'all' ? { all: true, names: [] } : { all: false, names: t.split(',').map((s) => s.trim()) };
}

/** `skip=…;experimental=…;error=…`; throws a message (no location) on a bad option. */
export function parseCheckOptions(text: string): CheckConfig {
  const s = text.trim();
  if (s === '') return { ...NONE };
  const out: CheckConfig = { ...NONE, skip: [], experimental: [] };
  const parts = splitN(s, ';', 3);
  for (const p of parts) {
    const eq = p.indexOf('=');
    if (eq < 0) throw new Error(`invalid check option "${p}"`);
    const k = p.slice(0, eq).trim();
    const v = p.slice(eq + 1);
    if (k === 'skip') {
      const l = list(v);
      out.skipAll = l.all;
      out.skip = l.names;
    } else if (k === 'experimental') {
      const l = list(v);
      out.experimentalAll = l.all;
      out.experimental = l.names;
    } else if (k === 'error') {
      const b = parseBool(v.trim());
      if (b === undefined) throw new Error(`failed to parse check option "${p}": invalid syntax`);
      out.error = b;
    } else {
      throw new Error(`invalid check option "${k}"`);
    }
  }
  return out;
}

/** Go's `strings.SplitN`: at most n parts, the last one keeps the rest. */
function splitN(s: string, sep: string, n: number): string[] {
  const out: string[] = [];
  let rest = s;
  while (out.length < n - 1) {
    const i = rest.indexOf(sep);
    if (i < 0) break;
    out.push(rest.slice(0, i));
    rest = rest.slice(i + sep.length);
  }
  out.push(rest);
  return out;
}

/** The effective configuration for a Dockerfile: the build arg wins over the directive. */
export function checkConfig(opts: { file: string; directive?: string; buildArgs?: Record<string, string> }): CheckConfig {
  const arg = opts.buildArgs?.[CHECK_BUILD_ARG];
  const [source, text] = arg !== undefined ? [`--build-arg ${CHECK_BUILD_ARG}`, arg] : ['the "# check=" directive', opts.directive ?? ''];
  try {
    return parseCheckOptions(text);
  } catch (e) {
    throw new ParseError({
      code: 'InvalidCheckOption',
      file: opts.file,
      line: 0,
      message: `failed to parse check options in ${source}: ${(e as Error).message}`,
      hint: 'write e.g. "# check=skip=JSONArgsRecommended,StageNameCasing;error=true" (options: skip=, experimental=, error=)',
    });
  }
}
