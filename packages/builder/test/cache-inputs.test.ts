/**
 * Cache records keep one digest per input, never a value, and --explain-cache words a
 * difference of digests by the input's name.
 */
import { diffInputs, inputDigests } from '@hoist/builder';

const parent = 'p'.repeat(64);
const run = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  op: 'run',
  args: ['/bin/sh', '-c', 'npm ci'],
  env: ['PATH=/usr/bin:/bin', 'HOME=/root'],
  buildArgs: ['NPM_TOKEN=s3cr3t-123', 'MODE=prod'],
  user: '',
  ...over,
});

describe('input digests', () => {
  it('name every variable and keep no value', () => {
    const d = inputDigests(parent, run());
    expect(Object.keys(d).sort()).toEqual(['arg:MODE', 'arg:NPM_TOKEN', 'args', 'env:HOME', 'env:PATH', 'op', 'user']);
    expect(d.op).toBe('run');
    const text = JSON.stringify(d);
    for (const value of ['s3cr3t-123', 'prod', '/usr/bin', '/root', 'npm ci']) expect(text).not.toContain(value);
    for (const [k, v] of Object.entries(d)) if (k !== 'op') expect(v).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('are equal for equal inputs on one parent, and differ across parents', () => {
    expect(inputDigests(parent, run())).toEqual(inputDigests(parent, run()));
    expect(inputDigests('q'.repeat(64), run())['arg:NPM_TOKEN']).not.toBe(inputDigests(parent, run())['arg:NPM_TOKEN']);
  });

  it('keep the kind of a COPY source in clear', () => {
    expect(inputDigests(parent, { op: 'copy', from: `stage:${'k'.repeat(64)}` }).from).toMatch(/^stage:sha256:[0-9a-f]{64}$/);
    expect(inputDigests(parent, { op: 'copy', from: 'context' }).from).toMatch(/^context:sha256:/);
  });
});

describe('diffInputs', () => {
  const was = inputDigests(parent, run());
  it.each([
    ['a changed build arg', run({ buildArgs: ['NPM_TOKEN=other', 'MODE=prod'] }), ['build arg NPM_TOKEN changed']],
    ['a new build arg', run({ buildArgs: ['NPM_TOKEN=s3cr3t-123', 'MODE=prod', 'EXTRA=1'] }), ['build arg EXTRA added']],
    ['a removed build arg', run({ buildArgs: ['NPM_TOKEN=s3cr3t-123'] }), ['build arg MODE removed']],
    ['a changed variable', run({ env: ['PATH=/bin', 'HOME=/root'] }), ['environment variable PATH changed']],
    ['a changed command', run({ args: ['/bin/sh', '-c', 'npm test'] }), ['the command changed']],
    ['a changed user', run({ user: 'node' }), ['user changed']],
  ])('%s', (_what, now, words) => {
    expect(diffInputs(was, inputDigests(parent, now))).toEqual(words);
  });

  it('names the kind of source a COPY now reads', () => {
    const a = inputDigests(parent, { op: 'copy', from: 'context' });
    const b = inputDigests(parent, { op: 'copy', from: `stage:${'k'.repeat(64)}` });
    const c = inputDigests(parent, { op: 'copy', from: `stage:${'j'.repeat(64)}` });
    expect(diffInputs(a, b)).toEqual(['the source it copies from changed (was context, now stage)']);
    expect(diffInputs(b, c)).toEqual(['the stage it copies from changed']);
  });
});
