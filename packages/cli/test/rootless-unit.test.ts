import { commandOf, idMapArgs, wantsUserNamespace } from '../src/rootless.js';

describe('rootless re-exec decisions', () => {
  it('finds the subcommand past global options', () => {
    expect(commandOf(['build', '.'])).toBe('build');
    expect(commandOf(['--root', '/s', 'images'])).toBe('images');
    expect(commandOf([])).toBeUndefined();
  });

  it('re-runs store commands of a non-root user, nothing else', () => {
    expect(wantsUserNamespace(['build', '.'], 1001)).toBe(true);
    expect(wantsUserNamespace(['--root', '/s', 'prune', '-f'], 1001)).toBe(true);
    expect(wantsUserNamespace(['build', '.'], 0)).toBe(false);
    for (const cmd of ['version', 'plan', 'login', 'logout', 'help']) expect(wantsUserNamespace([cmd], 1001)).toBe(false);
    expect(wantsUserNamespace(['build', '--help'], 1001)).toBe(false);
    expect(wantsUserNamespace([], 1001)).toBe(false);
  });

  it('writes newuidmap arguments as pid and triples', () => {
    expect(idMapArgs(42, [{ inside: 0, outside: 1001, count: 1 }, { inside: 1, outside: 100000, count: 65536 }])).toEqual(['42', '0', '1001', '1', '1', '100000', '65536']);
  });
});
