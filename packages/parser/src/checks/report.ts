/** Collects check results the way BuildKit's linter does: skipped rules are dropped, experimental ones need opting in. */
import { MESSAGES, ruleInfo, type RuleName } from './rules.js';
import { parseCheckOptions, type CheckConfig } from './config.js';

export interface CheckWarning {
  rule: RuleName;
  description: string;
  url?: string;
  /** The formatted message (BuildKit's "detail"). */
  message: string;
  file: string;
  /** 1-based start and end line of the instruction the check points at. */
  line: number;
  endLine: number;
}

/** Where a warning points; `comments` (those above the instruction) may hold a `check=` line for it alone. */
export interface At {
  line: number;
  endLine?: number;
  comments?: string[];
}

export interface Reporter {
  warn<R extends RuleName>(rule: R, at: At, ...args: Parameters<(typeof MESSAGES)[R]>): void;
  readonly warnings: CheckWarning[];
}

export function enabled(config: CheckConfig, rule: RuleName): boolean {
  if (ruleInfo(rule).experimental) return config.experimentalAll || config.experimental.includes(rule);
  return !(config.skipAll || config.skip.includes(rule));
}

/**
 * BuildKit's `WithMergedConfigFromComments`: the first `# check=…` comment directly above an
 * instruction adds its skip / experimental rules for that instruction (a bad one is ignored).
 */
function configFor(config: CheckConfig, comments: string[] | undefined): CheckConfig {
  for (const c of comments ?? []) {
    const m = /^\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/.exec(c);
    if (!m || m[1]!.toLowerCase() !== 'check') continue;
    let extra: CheckConfig;
    try {
      extra = parseCheckOptions(m[2]!.split(' ')[0]!);
    } catch {
      return config;
    }
    return {
      skipAll: config.skipAll || extra.skipAll,
      skip: [...config.skip, ...extra.skip],
      experimentalAll: config.experimentalAll || extra.experimentalAll,
      experimental: [...config.experimental, ...extra.experimental],
      error: config.error,
    };
  }
  return config;
}

export function createReporter(file: string, config: CheckConfig): Reporter {
  const warnings: CheckWarning[] = [];
  return {
    warnings,
    warn(rule, at, ...args) {
      if (!enabled(configFor(config, at.comments), rule)) return;
      const info = ruleInfo(rule);
      const format = MESSAGES[rule] as (...a: string[]) => string;
      const w: CheckWarning = { rule, description: info.description, message: format(...(args as string[])), file, line: at.line, endLine: at.endLine ?? at.line };
      if (info.url) w.url = info.url;
      warnings.push(w);
    },
  };
}

/** BuildKit's `lint violation found for rules: A, B` when `error=true` and a check failed. */
export function violationMessage(config: CheckConfig, warnings: CheckWarning[]): string | undefined {
  if (!config.error || warnings.length === 0) return undefined;
  return `lint violation found for rules: ${[...new Set(warnings.map((w) => w.rule))].join(', ')}`;
}
