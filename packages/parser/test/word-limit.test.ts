/**
 * Bounded work on hostile Dockerfiles: a word may not expand past Linux's MAX_ARG_STRLEN
 * (32 pages of 4096 bytes, execve(2)) unless it is that long itself.
 */
import { parse, plan, processWord, ParseError, ShellError } from '@hoist/parser';

const MAX_ARG_STRLEN = 32 * 4096;

/** `ARG V0=ab`, then `ARG Vn=${Vn-1}${Vn-1}` for n = 1..count: Vn is 2 * 2^n characters long. */
function chained(count: number, global: boolean): string {
  const args = ['ARG V0=ab', ...Array.from({ length: count }, (_, i) => `ARG V${i + 1}=\${V${i}}\${V${i}}`)];
  return global ? [...args, 'FROM scratch', `ARG V${count}`, `LABEL x=$V${count}`, ''].join('\n') : ['FROM scratch', ...args, `LABEL x=$V${count}`, ''].join('\n');
}

/** The Dockerfile line (1-based) of the first `ARG Vn` whose value exceeds the limit. */
function firstTooLong(text: string): number {
  const lines = text.split('\n');
  let n = 0;
  while (2 * 2 ** n <= MAX_ARG_STRLEN) n++;
  return lines.findIndex((l) => l.startsWith(`ARG V${n}=`)) + 1;
}

function planError(text: string): ParseError {
  try {
    plan(parse(text, { file: 'Dockerfile' }), {});
  } catch (e) {
    if (e instanceof ParseError) return e;
    throw e;
  }
  throw new Error('no ParseError');
}

describe('expanded word size limit', () => {
  test.each([
    ['in a stage', false],
    ['before the first FROM', true],
  ])('26 chained doubling ARGs %s fail at the first line past the limit', (_where, global) => {
    const text = chained(26, global);
    const e = planError(text);
    expect(e.code).toBe('WordTooLong');
    expect(e.line).toBe(firstTooLong(text));
    expect(e.message).toContain(String(MAX_ARG_STRLEN));
    expect(e.hint).toMatch(/file in the build context/);
  });

  test('a chain that stays within the limit plans, with the full value', () => {
    let n = 0; // the longest chain whose last value (2 * 2^n characters) fits
    while (2 * 2 ** (n + 1) <= MAX_ARG_STRLEN) n++;
    const p = plan(parse(chained(n, false), { file: 'Dockerfile' }), {});
    const label = p.stages[0]!.steps.at(-1)!.instruction;
    expect(label.kind).toBe('label');
    expect(label.kind === 'label' && label.pairs[0]![1]).toBe('ab'.repeat(2 ** n));
  });

  test('${V//pattern/replacement} cannot amplify past the limit', () => {
    const env = (n: string): string | undefined => (n === 'A' ? 'a'.repeat(60_000) : undefined);
    const run = (): string => processWord(`\${A//a/${'x'.repeat(10)}}`, env, { escape: '\\' });
    expect(run).toThrow(ShellError);
    try {
      run();
    } catch (e) {
      expect((e as ShellError).kind).toBe('limit');
    }
  });

  test('a literal word longer than the limit is not an expansion and passes', () => {
    const word = `"${'y'.repeat(MAX_ARG_STRLEN + 10)}"`;
    expect(processWord(word, () => undefined, { escape: '\\' })).toHaveLength(MAX_ARG_STRLEN + 10);
  });

  test('a value just at the limit expands', () => {
    const env = (n: string): string | undefined => (n === 'H' ? 'h'.repeat(MAX_ARG_STRLEN / 2) : undefined);
    expect(processWord('$H$H', env, { escape: '\\' })).toHaveLength(MAX_ARG_STRLEN);
    expect(() => processWord('$H$H.', env, { escape: '\\' })).toThrow(ShellError);
  });
});
