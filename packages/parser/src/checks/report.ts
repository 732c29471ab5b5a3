/** Collects check results the way BuildKit's linter does: skipped rules are dropped, experimental ones need opting in. */
import { MESSAGES, ruleInfo, type RuleName } from './rules.js';
import type { CheckConfig } from './config.js';

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

export interface Reporter {
  warn<R extends RuleName>(rule: R, at: { line: number; endLine?: number }, ...args: Parameters<(typeof MESSAGES)[R]>): void;
  readonly warnings: CheckWarning[];
}

export function enabled(config: CheckConfig, rule: RuleName): boolean {
  if (ruleInfo(rule).experimental) return config.experimentalAll || config.experimental.includes(rule);
  return !(config.skipAll || config.skip.includes(rule));
}

export function createReporter(file: string, config: CheckConfig): Reporter {
  const warnings: CheckWarning[] = [];
  return {
    warnings,
    warn(rule, at, ...args) {
      if (!enabled(config, rule)) return;
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
