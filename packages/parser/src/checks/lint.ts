/**
 * `lint(df, options)`: BuildKit's build checks over a parsed Dockerfile. Pure: the caller passes
 * the .dockerignore text and what it knows of the base images (env and shell, for UndefinedVar
 * and JSONArgsRecommended; without it those two skip stages built on an unknown image).
 */
import type { Dockerfile } from '../ast.js';
import type { BaseImageInfo } from '../plan-types.js';
import { DEFAULT_PLATFORM, parsePlatform, formatPlatform, platformArgs, resolveGlobalArgs } from '../args.js';
import { createDockerignoreMatcher } from '../dockerignore.js';
import { checkConfig, type CheckConfig } from './config.js';
import { createReporter, violationMessage, type CheckWarning, type Reporter } from './report.js';
import { syntaxChecks } from './syntax.js';
import { fromChecks } from './from.js';
import { dispatchChecks } from './dispatch.js';

export interface LintOptions {
  buildArgs?: Record<string, string>;
  /** Target platform `os/arch[/variant]` (default linux/amd64). */
  platform?: string;
  buildPlatform?: string;
  /** Stage indexes whose instructions are checked (a build: the stages the target needs); default all. */
  stages?: number[];
  dockerignore?: string;
  baseImages?: Record<string, BaseImageInfo>;
}

export interface LintResult {
  config: CheckConfig;
  /** Sorted by line. */
  warnings: CheckWarning[];
  /** `lint violation found for rules: …` when `error=true` and a check failed. */
  error?: string;
}

function finish(config: CheckConfig, warnings: CheckWarning[]): LintResult {
  const sorted = warnings.map((w, i) => [w, i] as const).sort((a, b) => a[0].line - b[0].line || a[1] - b[1]).map(([w]) => w);
  const error = violationMessage(config, sorted);
  return error === undefined ? { config, warnings: sorted } : { config, warnings: sorted, error };
}

/** Checks on the syntax layer only: for a file whose typed parse failed (BuildKit still reports these). */
export function lintSyntax(lexed: Pick<Dockerfile, 'file' | 'directives' | 'nodes' | 'warnings'>, buildArgs: Record<string, string> = {}): LintResult {
  const config = checkConfig({ file: lexed.file, ...(lexed.directives.check !== undefined ? { directive: lexed.directives.check } : {}), buildArgs });
  const r = createReporter(lexed.file, config);
  syntaxChecks(lexed, r);
  return finish(config, r.warnings);
}

export function lint(df: Dockerfile, options: LintOptions = {}): LintResult {
  const buildArgs = options.buildArgs ?? {};
  const config = checkConfig({ file: df.file, ...(df.directives.check !== undefined ? { directive: df.directives.check } : {}), buildArgs });
  const r = createReporter(df.file, config);
  syntaxChecks(df, r);
  const buildPlatform = options.buildPlatform ?? DEFAULT_PLATFORM;
  const platform = platformArgs(buildPlatform, options.platform ?? buildPlatform);
  let globals;
  let defaults;
  try {
    globals = resolveGlobalArgs(df, buildArgs, platform);
    defaults = resolveGlobalArgs(df, {}, platform);
  } catch {
    return finish(config, r.warnings); // the build reports the bad global ARG itself
  }
  fromChecks({ df, globalEnv: globals.env, defaultEnv: defaults.env }, r);
  const silent: Reporter = { warnings: [], warn: () => undefined };
  const inScope = new Set(options.stages ?? df.stages.map((_, i) => i));
  const ctx = { df, globalEnv: globals.env, globalDeclared: new Set(globals.declared.keys()), buildArgs, baseImages: options.baseImages ?? {} };
  dispatchChecks(options.dockerignore !== undefined ? { ...ctx, ignore: createDockerignoreMatcher(options.dockerignore) } : ctx, inScope, r, silent);
  return finish(config, r.warnings);
}

/**
 * `InvalidBaseImagePlatform`, checked by the builder once a base image is resolved: its OS or
 * architecture differs from the platform the stage asked for. Skipped like any other rule.
 */
export function baseImagePlatformWarning(
  df: Pick<Dockerfile, 'file'>,
  config: CheckConfig,
  b: { image: string; expected: string; actual: string; line: number; endLine?: number },
): CheckWarning | undefined {
  const e = parsePlatform(b.expected);
  const a = parsePlatform(b.actual);
  if (e.os === a.os && e.arch === a.arch) return undefined;
  const r = createReporter(df.file, config);
  r.warn('InvalidBaseImagePlatform', { line: b.line, ...(b.endLine !== undefined ? { endLine: b.endLine } : {}) }, b.image, formatPlatform(e), formatPlatform(a));
  return r.warnings[0];
}

export { parseCheckOptions, CHECK_BUILD_ARG, type CheckConfig } from './config.js';
export { violationMessage, type CheckWarning } from './report.js';
export { RULE_NAMES, ruleInfo, type RuleName, type RuleInfo } from './rules.js';
