/**
 * BuildKit's build checks through the CLI binary: `hoist build --check` / `--call=check` print
 * buildx's report and exit 0 (warnings), 1 (`# check=error=true` and a failed check) or 2 (a
 * Dockerfile that does not parse); a normal build shows the same warnings in plain and json
 * progress, and `error=true` fails it before any step runs.
 */
import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { hoist, storeWithBusybox, tempDir } from '@hoist/testkit';

describe('build checks (CLI)', () => {
  let root: string;
  let work: string;
  beforeAll(async () => {
    [root, work] = await Promise.all([storeWithBusybox(), tempDir('checks')]);
  });
  afterAll(async () => {
    await fsp.rm(root, { recursive: true, force: true });
    await fsp.rm(work, { recursive: true, force: true });
  });

  async function context(name: string, dockerfile: string, dockerignore?: string): Promise<string> {
    const dir = path.join(work, name);
    await fsp.mkdir(dir, { recursive: true });
    await fsp.writeFile(path.join(dir, 'Dockerfile'), dockerfile);
    if (dockerignore !== undefined) await fsp.writeFile(path.join(dir, '.dockerignore'), dockerignore);
    return dir;
  }

  it('--check: warnings as buildx prints them, exit 0, and nothing is built', async () => {
    const ctx = await context('warn', 'FROM scratch as base\nCOPY Dockerfile /\nCMD echo hi\n');
    const fresh = path.join(work, 'unused-store');
    const r = await hoist(['build', '--root', fresh, '--check', ctx]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        'Check complete, 2 warnings have been found!',
        '',
        'WARNING: FromAsCasing - https://docs.docker.com/go/dockerfile/rule/from-as-casing/',
        "'as' and 'FROM' keywords' casing do not match",
        `${path.relative(process.cwd(), path.join(ctx, 'Dockerfile'))}:1`,
        '--------------------',
        '   1 | >>> FROM scratch as base',
        '   2 |     COPY Dockerfile /',
        '   3 |     CMD echo hi',
        '--------------------',
        '',
        'WARNING: JSONArgsRecommended - https://docs.docker.com/go/dockerfile/rule/json-args-recommended/',
        'JSON arguments recommended for CMD to prevent unintended behavior related to OS signals',
        `${path.relative(process.cwd(), path.join(ctx, 'Dockerfile'))}:3`,
        '--------------------',
        '   1 |     FROM scratch as base',
        '   2 |     COPY Dockerfile /',
        '   3 | >>> CMD echo hi',
        '   4 |     ',
        '--------------------',
        '',
      ].join('\n'),
    );
    expect(existsSync(fresh)).toBe(false);
  });

  it('--call=check: a clean Dockerfile says so; error=true with a failed check exits 1', async () => {
    const clean = await context('clean', 'FROM scratch\nCOPY Dockerfile /\n');
    const ok = await hoist(['build', '--root', root, '--call=check', clean]);
    expect([ok.code, ok.stdout]).toEqual([0, 'Check complete, no warnings found.\n']);
    const strict = await context('strict', '# check=error=true\nFROM scratch as base\nCOPY Dockerfile /\n');
    const bad = await hoist(['build', '--root', root, '--call', 'check', strict]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain('Check complete, 1 warning has been found!');
    expect(bad.stderr).toContain('ERROR: lint violation found for rules: FromAsCasing');
    const skipped = await hoist(['build', '--root', root, '--check', '--build-arg', 'BUILDKIT_DOCKERFILE_CHECK=skip=FromAsCasing;error=true', strict]);
    expect([skipped.code, skipped.stdout]).toEqual([0, 'Check complete, no warnings found.\n']);
  });

  it('a Dockerfile that does not parse: the warnings before the error, the error, exit 2', async () => {
    const ctx = await context('broken', 'FROM scratch AS Base\nMAINTAINER me\nBADCMD\n');
    const r = await hoist(['build', '--root', root, '--check', ctx]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('WARNING: StageNameCasing - https://docs.docker.com/go/dockerfile/rule/stage-name-casing/');
    expect(r.stdout).toContain('WARNING: MaintainerDeprecated - https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/');
    expect(r.stderr).toMatch(/Dockerfile:3:1: error\[UnknownInstruction\]: unknown instruction: BADCMD/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('--call with an unknown function or option is a usage error listing the valid ones', async () => {
    const ctx = await context('usage', 'FROM scratch\n');
    const a = await hoist(['build', '--root', root, '--call=outline', ctx]);
    expect([a.code, a.stderr]).toEqual([2, 'hoist: --call outline: unknown function; valid: build, check\n']);
    const b = await hoist(['build', '--root', root, '--call=check,format=yaml', ctx]);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('valid: format=text, format=json');
  });

  it('--call=check,format=json: BuildKit\'s lint result JSON', async () => {
    const ctx = await context('json', 'FROM scratch\nCOPY Dockerfile .\nADD Dockerfile /x\n', 'Dockerfile\n');
    const r = await hoist(['build', '--root', root, '--call=check,format=json', ctx]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { warnings: Array<{ ruleName: string; detail: string; url: string; location: { ranges: Array<{ start: { line: number } }> } }> };
    expect(out.warnings.map((w) => [w.ruleName, w.detail, w.location.ranges[0]!.start.line])).toEqual([
      ['CopyIgnoredFile', 'Attempting to Copy file "Dockerfile" that is excluded by .dockerignore', 2],
      ['CopyIgnoredFile', 'Attempting to Add file "Dockerfile" that is excluded by .dockerignore', 3],
    ]);
    expect(out.warnings[0]!.url).toBe('https://docs.docker.com/go/dockerfile/rule/copy-ignored-file/');
  });

  it('--check uses base images already in the store (env for UndefinedVar, platform) and pulls none', async () => {
    const ctx = await context('bases', 'FROM busybox\nENV PATH=$PAHT:/tmp/bin\n\nFROM localhost:1/not-here/img AS other\nENV X=$NOPE\n');
    const r = await hoist(['build', '--root', root, '--check', '--platform', 'linux/arm64', ctx]);
    expect(r.code).toBe(0);
    const found = [...r.stdout.matchAll(/^WARNING: (\w+).*\n(.*)\n.*:(\d+)$/gm)].map((m) => [m[1], m[2], Number(m[3])]);
    expect(found).toEqual([
      ['InvalidBaseImagePlatform', 'Base image busybox was pulled with platform "linux/amd64", expected "linux/arm64" for current build', 1],
      ['UndefinedVar', "Usage of undefined variable '$PAHT' (did you mean $PATH?)", 2],
    ]);
  });

  it('a build shows the warnings in plain progress and as json events; error=true fails it before any step', async () => {
    const ctx = await context('build', 'FROM busybox as base\nCOPY Dockerfile /\n');
    const plain = await hoist(['build', '--root', root, '--progress=plain', '--platform', 'linux/arm64', ctx]);
    expect(plain.code).toBe(0);
    const warnings = plain.stderr.split('\n').filter((l) => l.startsWith('WARNING:'));
    expect(warnings).toEqual([
      "WARNING: FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)",
      'WARNING: InvalidBaseImagePlatform: Base image busybox was pulled with platform "linux/amd64", expected "linux/arm64" for current build (line 1)',
    ]);
    const json = await hoist(['build', '--root', root, '--progress=json', ctx]);
    expect(json.code).toBe(0);
    const events = json.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string; rule?: string; url?: string; line?: number; message: string });
    expect(events.filter((e) => e.type === 'warning').map(({ rule, url, line, message }) => ({ rule, url, line, message }))).toEqual([
      { rule: 'FromAsCasing', url: 'https://docs.docker.com/go/dockerfile/rule/from-as-casing/', line: 1, message: "FromAsCasing: 'as' and 'FROM' keywords' casing do not match" },
    ]);
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), '# check=error=true\nFROM busybox as base\nCOPY Dockerfile /\n');
    const failed = await hoist(['build', '--root', root, '--progress=plain', '-t', 'checks-failed:1', ctx]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('ERROR: lint violation found for rules: FromAsCasing');
    expect(failed.stderr).not.toMatch(/^#\d+ /m); // no step started
    const images = await hoist(['images', '--root', root]);
    expect(images.stdout).not.toContain('checks-failed');
  });
});
