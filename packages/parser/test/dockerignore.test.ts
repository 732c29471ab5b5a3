import { createDockerignoreMatcher, dockerignoreCandidates, ParseError } from '@hoist/parser';

describe('dockerignore matcher', () => {
  const m = createDockerignoreMatcher(`# comment
*.md
!README.md
/tmp
**/cache
vendor/**
!vendor/keep/**
a/*/c
a?c.txt
[abc].bin
dir\\*name
`);

  test.each([
    ['x.md', true],
    ['README.md', false],
    ['docs/x.md', false],
    ['tmp', true],
    ['tmp/file', true],
    ['sub/tmp', false],
    ['cache', true],
    ['a/b/cache/x', true],
    ['vendor', false],
    ['vendor/x', true],
    ['vendor/keep/y', false],
    ['a/b/c', true],
    ['a/b/c/d.go', true],
    ['a/b/x/c', false],
    ['abc.txt', true],
    ['ab/c.txt', false],
    ['a.bin', true],
    ['d.bin', false],
    ['dir*name', true],
    ['dirXname', false],
    ['./x.md', true],
    ['/x.md', true],
  ])('%s excluded=%s', (path, excluded) => {
    expect(m.matches(path)).toBe(excluded);
  });

  test('directory pruning', () => {
    expect(m.hasExclusions).toBe(true);
    expect(m.mayMatchUnder('vendor')).toBe(true);
    expect(m.canSkipDir('vendor')).toBe(false);
    expect(m.canSkipDir('tmp')).toBe(true);
    expect(m.canSkipDir('src')).toBe(false);
    const plain = createDockerignoreMatcher('node_modules\n.git\n');
    expect(plain.hasExclusions).toBe(false);
    expect(plain.canSkipDir('node_modules')).toBe(true);
    expect(plain.canSkipDir('src')).toBe(false);
  });

  test('patterns are cleaned', () => {
    const c = createDockerignoreMatcher('./a/../b\n/c/\n  d  \n! e\n!f/\n');
    expect(c.patterns.map((p) => (p.exclusion ? '!' : '') + p.pattern)).toEqual(['b', 'c', 'd', '!e', '!f']);
  });

  test('later patterns win; "!" alone is an error', () => {
    const c = createDockerignoreMatcher('!x\nx\n');
    expect(c.matches('x')).toBe(true);
    expect(() => createDockerignoreMatcher('!\n')).toThrow(ParseError);
    expect(() => createDockerignoreMatcher('[abc\n')).toThrow(ParseError);
  });

  test('candidate ignore files', () => {
    expect(dockerignoreCandidates('build/app.Dockerfile')).toEqual(['build/app.Dockerfile.dockerignore', '.dockerignore']);
  });
});

test('createPathMatcher takes patterns as given (COPY --exclude)', async () => {
  const { createPathMatcher } = await import('@hoist/parser');
  const m = createPathMatcher(['#notes', '*.md', '!keep.md']);
  expect(m.matches('#notes')).toBe(true);
  expect(m.matches('a.md')).toBe(true);
  expect(m.matches('keep.md')).toBe(false);
});

/**
 * The rules of moby/patternmatcher as BuildKit's context walk applies them (ignorefile cleaning,
 * MatchesUsingParentResults from the top directory down). Cases written from its tests and docs.
 */
describe("Docker's pattern rules", () => {
  type Row = [patterns: string, path: string, excluded: boolean];
  const rows: Row[] = [
    // single patterns
    ['*', 'main.go', true],
    ['*', 'src/main.go', true], // the parent matched
    ['*.go', 'main.go', true],
    ['*.go', 'cmd/main.go', false], // * stops at /
    ['?.txt', 'a.txt', true],
    ['?.txt', 'ab.txt', false],
    ['**', 'x', true],
    ['**', 'a/b/c', true],
    ['**/*.go', 'main.go', true],
    ['**/*.go', 'a/b/main.go', true],
    ['**/*.go', 'a/b/main.gox', false],
    ['**/build', 'build', true],
    ['**/build', 'x/y/build/out.o', true],
    ['**/build', 'xbuild', false],
    ['**.log', 'deep/dir/x.log', true], // a leading ** with plain text after it is a suffix
    ['**cache', 'a/mycache', true],
    ['logs/**', 'logs', false], // logs/** needs something below logs
    ['logs/**', 'logs/a/b', true],
    ['src/**/*.test.ts', 'src/a.test.ts', true],
    ['src/**/*.test.ts', 'src/x/y/a.test.ts', true],
    ['src/**/*.test.ts', 'srcx/a.test.ts', false],
    ['a**/*.txt', 'abc/d/f.txt', true],
    ['docs/*', 'docs', false],
    ['docs/*', 'docs/x.md', true],
    ['[a-c]*', 'b1', true],
    ['[a-c]*', 'd1', false],
    ['[^a-c]*', 'd1', true],
    ['[!a]x', '!x', true], // ! does not negate a class
    ['a.b', 'aXb', false], // regexp characters are literal
    ['x+(y)', 'x+(y)', true],
    ['dir\\*name', 'dir*name', true],
    ['dir\\*name', 'dirXname', false],
    // cleaning: leading / and ./, trailing /, .. resolved, nothing outside the context
    ['/abs/path', 'abs/path', true],
    ['./rel', 'rel/file', true],
    ['trailing/', 'trailing/x', true],
    ['a/../b', 'b', true],
    ['a/../b', 'a', false],
    ['../outside', 'outside', false],
    ['.', 'x', false],
    // several patterns: the last match decides, ! re-includes
    ['*.go\n!main.go', 'main.go', false],
    ['!main.go\n*.go', 'main.go', true],
    ['docs\n!docs/README.md', 'docs/README.md', false],
    ['docs\n!docs/README.md', 'docs/other.md', true],
    ['docs/\n!docs/README.md', 'docs/README.md', false],
    // allow-lists: exclude everything, re-include a few paths
    ['*\n!a.txt', 'a.txt', false],
    ['*\n!a.txt', 'b.txt', true],
    ['*\n!a.txt', '.dockerignore', true],
    ['*\n!a.txt', 'Dockerfile', true],
    ['**\n!a.txt', 'a.txt', false],
    ['**\n!a.txt', 'sub/a.txt', true],
    ['*\n!src', 'src', false],
    ['*\n!src', 'src/deep/x.ts', false],
    ['*\n!src', 'other/x.ts', true],
    ['*\n!src/keep.txt', 'src', true], // the directory itself stays excluded ...
    ['*\n!src/keep.txt', 'src/keep.txt', false], // ... but what is below it comes back
    ['*\n!src/keep.txt', 'src/other', true],
    ['**\n!util/web\nutil/web/secret', 'util/web/page', false],
    ['**\n!util/web\nutil/web/secret', 'util/web/secret', true],
    // fsutil's walker tests: an excluded directory holding an exception, exceptions nested twice
    ['foo*\n!foo/bar2', 'foo', true],
    ['foo*\n!foo/bar2', 'foo/bar2', false],
    ['foo*\n!foo/bar2', 'foo2', true],
    ['foo\n!foo/bar\nfoo/bar/baz\n!foo/bar/baz/x', 'foo/bar/other', false],
    ['foo\n!foo/bar\nfoo/bar/baz\n!foo/bar/baz/x', 'foo/bar/baz/x', false],
    ['foo\n!foo/bar\nfoo/bar/baz\n!foo/bar/baz/x', 'foo/bar/baz/y', true],
    // BuildKit's walk carries each pattern's parent result down: "!d" was skipped at "d" (not
    // excluded then), so it cannot rescue "d/x" that */x excludes
    ['*/x\n!d', 'd/x', true],
  ];

  test.each(rows)('%j: %s excluded=%s', (patterns, path, excluded) => {
    expect(createDockerignoreMatcher(patterns).matches(path)).toBe(excluded);
  });

  test('the context root is never excluded', () => {
    for (const text of ['*', '**', '.', '*\n!a.txt']) {
      const m = createDockerignoreMatcher(text);
      expect([m.matches(''), m.matches('.'), m.matches('./'), m.matches('/')]).toEqual([false, false, false, false]);
    }
  });

  test('an excluded directory is searched only when an exception can reach below it', () => {
    const allow = createDockerignoreMatcher('*\n!src/keep.txt\n');
    expect(allow.canSkipDir('src')).toBe(false);
    expect(allow.canSkipDir('lib')).toBe(true);
    expect(createDockerignoreMatcher('*\n!a.txt\n').canSkipDir('sub')).toBe(true);
    expect(createDockerignoreMatcher('*\n!**/keep\n').canSkipDir('any/where')).toBe(false);
    expect(createDockerignoreMatcher('*\n!src\n').canSkipDir('src')).toBe(false); // not excluded at all
  });
});

test('one matcher serves a whole large context (the glob step budget is per path, not per matcher)', () => {
  const m = createDockerignoreMatcher(`**/${'a*'.repeat(20)}.log\n`);
  const name = 'ab'.repeat(1000); // 600 such paths cost the NFA some 55M steps in all
  let excluded = 0;
  for (let i = 0; i < 600; i++) if (m.matches(`${name}${i}${i % 2 ? '.log' : '.txt'}`)) excluded++;
  expect(excluded).toBe(300);
});
