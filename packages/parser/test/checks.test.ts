/**
 * BuildKit's build checks, one folder per rule: fixtures/checks/<Rule>/{bad,good}[N].Dockerfile
 * with a .json next to each: the options (buildArgs, baseImages, dockerignore, basePlatform) and
 * the warnings expected — rule, line, message and doc link as BuildKit's own linter tests
 * (frontend/dockerfile/dockerfile_lint_test.go) expect them. `bad` files trigger the folder's
 * rule; `good` files are BuildKit's negative cases and give no warning at all.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { baseImagePlatformWarning, lint, lintSyntax, parse, parseSyntax, ParseError, RULE_NAMES, type BaseImageInfo, type CheckWarning } from '@hoist/parser';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'fixtures', 'checks');

interface Spec {
  warnings: Array<{ rule: string; line: number; message: string; url?: string }>;
  buildArgs?: Record<string, string>;
  baseImages?: Record<string, BaseImageInfo>;
  dockerignore?: string;
  parseError?: string;
  basePlatform?: { image: string; expected: string; actual: string };
}

function run(text: string, spec: Spec): CheckWarning[] {
  if (spec.parseError !== undefined) {
    // hoist refuses the file (as older BuildKit did); the syntax-level checks still report
    expect(() => parse(text)).toThrow(expect.objectContaining({ code: spec.parseError }) as unknown as ParseError);
    return lintSyntax(parseSyntax(text), spec.buildArgs).warnings;
  }
  const df = parse(text);
  const res = lint(df, { ...(spec.buildArgs ? { buildArgs: spec.buildArgs } : {}), ...(spec.baseImages ? { baseImages: spec.baseImages } : {}), ...(spec.dockerignore !== undefined ? { dockerignore: spec.dockerignore } : {}) });
  if (!spec.basePlatform) return res.warnings;
  const w = baseImagePlatformWarning(df, res.config, { ...spec.basePlatform, line: df.stages[0]!.node.startLine });
  return [...res.warnings, ...(w ? [w] : [])];
}

const rules = readdirSync(dir).sort();
const cases = rules.flatMap((rule) =>
  readdirSync(join(dir, rule))
    .filter((f) => f.endsWith('.Dockerfile'))
    .sort()
    .map((f) => [rule, f.replace(/\.Dockerfile$/, '')] as const),
);

describe('build checks (fixtures/checks)', () => {
  test('every BuildKit rule has a folder with a bad and a good case', () => {
    expect(rules).toEqual([...RULE_NAMES].sort());
    expect(rules).toHaveLength(22);
    for (const r of rules) {
      expect(cases.filter(([x, n]) => x === r && n.startsWith('bad')).length).toBeGreaterThan(0);
      expect(cases.filter(([x, n]) => x === r && n.startsWith('good')).length).toBeGreaterThan(0);
    }
  });

  test.each(cases)('%s/%s', (rule, name) => {
    const text = readFileSync(join(dir, rule, `${name}.Dockerfile`), 'utf8');
    const spec = JSON.parse(readFileSync(join(dir, rule, `${name}.json`), 'utf8')) as Spec;
    const got = run(text, spec).map((w) => ({ rule: w.rule, line: w.line, message: w.message, ...(w.url ? { url: w.url } : {}) }));
    expect(got).toEqual(spec.warnings);
    if (name.startsWith('bad')) expect(got.some((w) => w.rule === rule)).toBe(true);
    else expect(got).toEqual([]);
  });
});
