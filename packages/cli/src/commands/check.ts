/**
 * `hoist build --call=check` / `--check`: BuildKit's build checks as the whole job, printed the
 * way buildx prints them. Exit 0 with or without warnings, 1 when `# check=error=true` (or
 * BUILDKIT_DOCKERFILE_CHECK) makes a failed check an error, 2 for a Dockerfile that does not parse.
 */
import { baseImagePlatformWarning, formatParseError, lint, lintSyntax, parse, parseSyntax, plan, ParseError, stagesNeeded, violationMessage, type CheckWarning, type LintResult } from '@hoist/parser';
import { localBases } from './check-bases.js';
import { UsageError } from '../errors.js';
import { parseKeyValues } from '../args.js';

export interface CallSpec {
  name: 'build' | 'check';
  format: 'text' | 'json';
}

/** buildx's `--call` syntax: `NAME[,format=text|json]`; `--check` is `--call=check`. */
export function parseCall(call: string | undefined, check: boolean | undefined): CallSpec {
  if (check) return { name: 'check', format: 'text' };
  const [name = 'build', ...opts] = (call ?? 'build').split(',');
  if (name !== 'build' && name !== 'check') throw new UsageError(`--call ${name}: unknown function; valid: build, check`);
  const spec: CallSpec = { name, format: 'text' };
  for (const o of opts) {
    const [k, v] = o.split('=', 2);
    if (k !== 'format' || (v !== 'text' && v !== 'json')) throw new UsageError(`--call option "${o}" is not valid; valid: format=text, format=json`);
    spec.format = v;
  }
  return spec;
}

/** BuildKit's source excerpt (solver/errdefs Source.Print): the lines around a range, marked `>>>`. */
export function sourceExcerpt(file: string, text: string, range: { line: number; endLine: number }): string {
  const lines = text.split('\n');
  let start = range.line;
  let end = Math.min(range.endLine, lines.length);
  if (start < 1 || start > lines.length) return '';
  const pad = end === start ? 4 : 2;
  for (let p = 0; p < pad; p++) {
    if (start > 1) {
      start--;
      p++;
    }
    if (end !== lines.length) {
      end++;
      p++;
    }
  }
  let out = `${file}:${range.line}\n--------------------\n`;
  for (let i = start; i <= end; i++) {
    const mark = i >= range.line && i <= range.endLine ? '>>>' : '   ';
    out += ` ${String(i).padStart(3)} | ${mark} ${lines[i - 1]}\n`;
  }
  return out + '--------------------\n';
}

function printText(res: LintResult, src: { path: string; text: string }, write: (s: string) => void): void {
  const n = res.warnings.length;
  if (n > 0) write(`Check complete, ${n === 1 ? '1 warning has' : `${n} warnings have`} been found!\n`);
  for (const w of res.warnings) {
    write(`\nWARNING: ${w.rule}${w.url ? ` - ${w.url}` : ''}\n${w.message}\n`);
    write(sourceExcerpt(src.path, src.text, w));
  }
  if (n === 0 && res.error === undefined) write('Check complete, no warnings found.\n');
}

/** BuildKit's lint result JSON (frontend/subrequests/lint): warnings with locations, the source, an error. */
function printJson(res: LintResult, src: { path: string; text: string }, write: (s: string) => void, error?: { message: string; line: number }): void {
  const range = (l: number, e: number): unknown => ({ ranges: [{ start: { line: l }, end: { line: e } }] });
  const warnings = res.warnings.map((w: CheckWarning) => ({ ruleName: w.rule, description: w.description, ...(w.url ? { url: w.url } : {}), detail: w.message, location: range(w.line, w.endLine) }));
  const out: Record<string, unknown> = { warnings, sources: [{ filename: src.path, language: 'Dockerfile', data: Buffer.from(src.text).toString('base64') }] };
  if (error) out.buildError = { message: error.message, location: range(error.line, error.line) };
  write(JSON.stringify(out, null, 2) + '\n');
}

const HOST_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

async function lintFile(src: { path: string; text: string; dockerignore?: string }, f: CheckFlags): Promise<LintResult> {
  const buildArgs = parseKeyValues(f.buildArg, '--build-arg', true);
  const df = parse(src.text, { file: src.path });
  const platform = f.platform ?? `linux/${HOST_ARCH[process.arch] ?? process.arch}`;
  const opts = { buildArgs, platform, ...(src.dockerignore !== undefined ? { dockerignore: src.dockerignore } : {}) };
  // as BuildKit: no --target checks every stage, a target only the stages it needs
  const stages = f.target ? stagesNeeded(plan(df, { ...opts, target: f.target })) : df.stages.map((_, i) => i);
  const bases = await localBases(f.root, df, opts);
  const res = lint(df, { ...opts, stages, baseImages: bases.infos });
  const warnings: CheckWarning[] = [...res.warnings];
  for (const b of bases.refs) {
    const actual = bases.platforms.get(b.ref);
    if (actual === undefined || !stages.includes(b.stage)) continue;
    const node = df.stages[b.stage]!.node;
    const w = baseImagePlatformWarning(df, res.config, { image: b.ref, expected: b.platform ?? platform, actual, line: node.startLine, endLine: node.endLine });
    if (w) warnings.push(w);
  }
  warnings.sort((a, b) => a.line - b.line);
  const error = violationMessage(res.config, warnings);
  return { config: res.config, warnings, ...(error !== undefined ? { error } : {}) };
}

export interface CheckFlags {
  file?: string;
  buildArg: string[];
  target?: string;
  platform?: string;
  /** The store: base images found there inform UndefinedVar and InvalidBaseImagePlatform. */
  root?: string;
}

/** `src`: the Dockerfile as `readDockerfile` found it (path shown, text, ignore file). */
export async function checkCommand(src: { path: string; text: string; dockerignore?: string }, f: CheckFlags, call: CallSpec): Promise<number> {
  const out = (s: string): void => void process.stdout.write(s);
  let res: LintResult;
  try {
    res = await lintFile(src, f);
  } catch (e) {
    if (!(e instanceof ParseError)) throw e;
    // the checks on the syntax layer still run, as BuildKit reports warnings before the error
    let before: LintResult | undefined;
    try {
      before = lintSyntax(parseSyntax(src.text, { file: src.path }), parseKeyValues(f.buildArg, '--build-arg', true));
    } catch {
      before = undefined;
    }
    if (call.format === 'json') printJson(before ?? { config: { skipAll: false, skip: [], experimentalAll: false, experimental: [], error: false }, warnings: [] }, src, out, { message: e.message, line: e.line });
    else if (before) printText({ ...before, error: e.message }, src, out);
    process.stderr.write(formatParseError(e, src.text) + '\n');
    return 2;
  }
  if (call.format === 'json') printJson(res, src, out, res.error !== undefined ? { message: res.error, line: res.warnings[0]!.line } : undefined);
  else printText(res, src, out);
  if (res.error === undefined) return 0;
  process.stderr.write(`${call.format === 'json' ? '' : '\n'}ERROR: ${res.error}\n${sourceExcerpt(src.path, src.text, res.warnings[0]!)}`);
  return 1;
}
