/** The isolation decision: --isolation / $HOIST_ISOLATION, and auto's detection (issue 10, modes 1 and 2). */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { tempDir } from '@hoist/testkit';
import { chooseIsolation, hasCapSysAdmin, isolationFlag, type IsolationFacts } from '../src/isolation.js';
import { RootlessError, UsageError } from '../src/errors.js';

function facts(over: Partial<IsolationFacts> & { probes?: string[] } = {}): IsolationFacts {
  const probes = over.probes ?? [];
  return {
    euid: 1001,
    usernsChild: false,
    capSysAdmin: () => (probes.push('caps'), true),
    usernsRefused: () => (probes.push('userns'), undefined),
    ...over,
  };
}

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('did not throw');
}

describe('isolationFlag', () => {
  it('reads --isolation X, --isolation=X, then $HOIST_ISOLATION, else auto', () => {
    expect(isolationFlag(['build', '--isolation', 'proot', '.'], {})).toBe('proot');
    expect(isolationFlag(['build', '--isolation=rootless', '.'], { HOIST_ISOLATION: 'proot' })).toBe('rootless');
    expect(isolationFlag(['build', '.'], { HOIST_ISOLATION: 'oci' })).toBe('oci');
    expect(isolationFlag(['build', '.'], {})).toBe('auto');
  });

  it('refuses another value as a usage error naming the choices', () => {
    const e = thrown(() => isolationFlag(['--isolation', 'gvisor'], {}));
    expect(e).toBeInstanceOf(UsageError);
    expect(e.message).toBe('--isolation must be auto, oci, rootless or proot, not "gvisor"');
  });
});

describe('chooseIsolation', () => {
  it('auto, an ordinary user where user namespaces work: runc (rootless), no capability probe', () => {
    const probes: string[] = [];
    expect(chooseIsolation('auto', facts({ probes }))).toEqual({ mode: 'runc' });
    expect(probes).toEqual(['userns']);
  });

  it('auto, an ordinary user where user namespaces are refused: proot, with what refused them', () => {
    expect(chooseIsolation('auto', facts({ usernsRefused: () => 'unshare: unshare failed: Operation not permitted' }))).toEqual({
      mode: 'proot',
      reason: 'user namespaces are refused here (unshare: unshare failed: Operation not permitted)',
    });
  });

  it('auto as root: runc with CAP_SYS_ADMIN, proot without it; never probes user namespaces', () => {
    const probes: string[] = [];
    expect(chooseIsolation('auto', facts({ euid: 0, probes }))).toEqual({ mode: 'runc' });
    const without = chooseIsolation('auto', facts({ euid: 0, probes, capSysAdmin: () => false }));
    expect(without).toEqual({ mode: 'proot', reason: expect.stringContaining('without CAP_SYS_ADMIN') });
    expect(probes).toEqual(['caps']);
  });

  it('proot when asked, for root and users alike, with no probe', () => {
    const probes: string[] = [];
    expect(chooseIsolation('proot', facts({ probes }))).toEqual({ mode: 'proot', reason: 'chosen with --isolation proot' });
    expect(chooseIsolation('proot', facts({ euid: 0, probes }))).toEqual({ mode: 'proot', reason: 'chosen with --isolation proot' });
    expect(probes).toEqual([]);
  });

  it('oci for a user and rootless for root are refused (exit 1) with the fix', () => {
    const oci = thrown(() => chooseIsolation('oci', facts()));
    expect(oci).toBeInstanceOf(RootlessError);
    expect(oci.message).toContain('hoist runs as uid 1001; run it as root, or use --isolation rootless (user namespaces) or --isolation proot (no privileges)');
    const rl = thrown(() => chooseIsolation('rootless', facts({ euid: 0 })));
    expect(rl).toBeInstanceOf(RootlessError);
    expect(rl.message).toContain('--isolation rootless is for an ordinary user');
  });

  it('inside the rootless namespace the choice is already made: runc, whatever the flag', () => {
    expect(chooseIsolation('rootless', facts({ euid: 0, usernsChild: true }))).toEqual({ mode: 'runc' });
  });
});

describe('hasCapSysAdmin', () => {
  it('reads bit 21 of CapEff', async () => {
    const dir = await tempDir('caps');
    const file = path.join(dir, 'status');
    await fsp.writeFile(file, 'Name:\tnode\nCapEff:\t000001ffffffffff\n');
    expect(hasCapSysAdmin(file)).toBe(true);
    await fsp.writeFile(file, 'Name:\tnode\nCapEff:\t00000000a80425fb\n'); // Docker's default set
    expect(hasCapSysAdmin(file)).toBe(false);
    await fsp.rm(dir, { recursive: true });
  });
});
