import * as path from 'node:path';
import { REPO_ROOT } from '@hoist/testkit';

type Graph = Map<string, string[]>;
interface CycleCheck {
  moduleGraph(): Graph;
  cycles(graph?: Graph): string[][];
}

const load = async (): Promise<CycleCheck> => (await import(path.join(REPO_ROOT, 'scripts', 'check-cycles.mjs'))) as CycleCheck;

describe('module graph (DESIGN.md section 3.1)', () => {
  it('no source file of any package is part of an import cycle (type-only imports count)', async () => {
    const mod = await load();
    expect(mod.moduleGraph().size).toBeGreaterThan(100);
    expect(mod.cycles()).toEqual([]);
  });

  it('the check finds a cycle of three files and a file that imports itself', async () => {
    const mod = await load();
    const g: Graph = new Map([
      ['/r/a.ts', ['/r/b.ts']],
      ['/r/b.ts', ['/r/c.ts']],
      ['/r/c.ts', ['/r/a.ts']],
      ['/r/d.ts', ['/r/a.ts', '/r/d.ts']],
      ['/r/e.ts', []],
    ]);
    const found = mod.cycles(g).map((c) => c.map((f) => path.basename(f)));
    expect(found).toEqual([['a.ts', 'b.ts', 'c.ts'], ['d.ts']]);
  });
});
