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
import { baseImagePlatformWarning, lint, lintSyntax, parse, parseSyntax, plan, ParseError, RULE_NAMES, ruleInfo, type BaseImageInfo, type CheckWarning } from '@hoist/parser';

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

/** BuildKit's testRuleCheckOption: the directive, the build arg that replaces it, error=true. */
describe('check configuration', () => {
  const body = 'FROM scratch as base\ncopy Dockerfile .\n';
  const rulesOf = (text: string, buildArgs: Record<string, string> = {}): { rules: string[]; error?: string } => {
    const r = lint(parse(text), { buildArgs });
    return { rules: r.warnings.map((w) => w.rule), ...(r.error !== undefined ? { error: r.error } : {}) };
  };

  test('without a directive both rules warn, and nothing is an error', () => {
    expect(rulesOf(body)).toEqual({ rules: ['FromAsCasing', 'ConsistentInstructionCasing'] });
  });

  test.each([['#check=skip=all\n'], ['#check=skip=all;error=true\n'], ['#check=skip=ConsistentInstructionCasing,FromAsCasing\n'], ['#check=skip=ConsistentInstructionCasing,FromAsCasing;error=true\n']])(
    '%s skips every warning and so fails nothing',
    (directive) => {
      expect(rulesOf(directive + body)).toEqual({ rules: [] });
    },
  );

  test('skip one rule: the other still warns; with error=true it is BuildKit\'s lint violation', () => {
    expect(rulesOf('#check=skip=ConsistentInstructionCasing\n' + body)).toEqual({ rules: ['FromAsCasing'] });
    expect(rulesOf('#check=skip=ConsistentInstructionCasing;error=true\n' + body)).toEqual({ rules: ['FromAsCasing'], error: 'lint violation found for rules: FromAsCasing' });
  });

  test('BUILDKIT_DOCKERFILE_CHECK replaces the directive', () => {
    expect(rulesOf('#check=skip=all\n' + body, { BUILDKIT_DOCKERFILE_CHECK: 'skip=ConsistentInstructionCasing;error=true' })).toEqual({
      rules: ['FromAsCasing'],
      error: 'lint violation found for rules: FromAsCasing',
    });
    expect(rulesOf('#check=error=true\n' + body, { BUILDKIT_DOCKERFILE_CHECK: 'skip=all' })).toEqual({ rules: [] });
  });

  test('the build arg is consumed: no UnusedBuildArg warning for it', () => {
    expect(plan(parse(body), { buildArgs: { BUILDKIT_DOCKERFILE_CHECK: 'skip=all', OTHER: '1' } }).warnings.map((w) => w.message)).toEqual([
      'build-arg OTHER was provided but not consumed by any ARG instruction',
    ]);
  });

  test('a bad option is a ParseError naming where it came from', () => {
    expect(() => lint(parse('#check=skip=all;bogus\n' + body))).toThrow('failed to parse check options in the "# check=" directive: invalid check option "bogus"');
    expect(() => lint(parse(body), { buildArgs: { BUILDKIT_DOCKERFILE_CHECK: 'error=maybe' } })).toThrow(
      'failed to parse check options in --build-arg BUILDKIT_DOCKERFILE_CHECK: failed to parse check option "error=maybe": invalid syntax',
    );
  });

  test('experimental rules run only when enabled; InvalidBaseImagePlatform has no doc link, the others BuildKit\'s', () => {
    const text = '# bar the bar\nARG foo=1\nFROM scratch\n';
    expect(rulesOf(text)).toEqual({ rules: [] });
    expect(rulesOf('#check=experimental=all\n' + text)).toEqual({ rules: ['InvalidDefinitionDescription'] });
    expect(ruleInfo('InvalidBaseImagePlatform').url).toBeUndefined();
    expect(ruleInfo('JSONArgsRecommended').url).toBe('https://docs.docker.com/go/dockerfile/rule/json-args-recommended/');
  });

  test('a build checks only the stages it needs (stages option); --call=check all of them', () => {
    const text = 'FROM scratch AS a\n\nFROM a AS b\nENV testkey value\n\nFROM a AS c\n';
    expect(lint(parse(text), { stages: [0, 2] }).warnings).toEqual([]);
    expect(lint(parse(text)).warnings.map((w) => [w.rule, w.line])).toEqual([['LegacyKeyValueFormat', 4]]);
  });
});

describe('a # check= comment right above an instruction', () => {
  test('skips rules for that instruction only (BuildKit merges it into the file config)', () => {
    const text = 'FROM scratch\n# check=skip=JSONArgsRecommended\nCMD echo a\nENTRYPOINT echo b\n# check=skip=all\nFROM scratch as b\nMAINTAINER me\n';
    expect(lint(parse(text)).warnings.map((w) => [w.rule, w.line])).toEqual([
      ['JSONArgsRecommended', 4],
      ['MaintainerDeprecated', 7],
    ]);
  });

  test('a blank line or an empty # between comment and instruction detaches it', () => {
    const text = 'FROM scratch\n# check=skip=JSONArgsRecommended\n\nCMD echo a\n# check=skip=JSONArgsRecommended\n#\nENTRYPOINT echo b\n';
    expect(lint(parse(text)).warnings.map((w) => [w.rule, w.line])).toEqual([
      ['JSONArgsRecommended', 4],
      ['JSONArgsRecommended', 7],
    ]);
  });
});
