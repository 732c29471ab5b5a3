/** COPY/ADD source wildcards: Go's filepath.Match per name, as BuildKit resolves them. */
import { goPathMatcher, hasWildcards } from '@hoist/parser';

describe('goPathMatcher (filepath.Match)', () => {
  test.each([
    ['*.txt', 'a.txt', true],
    ['*.txt', 'a.txt.bak', false],
    ['*', '.hidden', true],
    ['file?.md', 'file1.md', true],
    ['file?.md', 'file.md', false],
    ['[a-c]x', 'bx', true],
    ['[^a-c]x', 'bx', false],
    ['[^a-c]x', 'dx', true],
    // `!` does not negate a class in Go
    ['[!a]x', '!x', true],
    ['[!a]x', 'bx', false],
    ['a\\*', 'a*', true],
    ['a\\*', 'ab', false],
    ['[\\]]', ']', true],
    ['a.b', 'aXb', false],
    ['x+(y)', 'x+(y)', true],
    // malformed patterns match nothing (BuildKit ignores filepath.ErrBadPattern)
    ['[', '[', false],
    ['[]a]', ']', false],
    ['[a-]', 'a', false],
    ['ab\\', 'ab\\', false],
  ])('%s vs %s -> %s', (pattern, name, want) => {
    expect(goPathMatcher(pattern)(name)).toBe(want);
  });

  test('a hostile pattern stays linear', () => {
    const m = goPathMatcher('*a*a*a*a*a*a*a*a*a*a*b');
    expect(m('a'.repeat(5000))).toBe(false);
  });
});

describe('hasWildcards', () => {
  test.each([
    ['src/*.go', true],
    ['file?', true],
    ['[ab]', true],
    ['plain/path.txt', false],
    ['a\\*b', false],
    ['a\\\\*b', true],
  ])('%s -> %s', (p, want) => {
    expect(hasWildcards(p)).toBe(want);
  });
});
