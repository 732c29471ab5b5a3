/**
 * 26 chained `ARG Vn=${Vn-1}${Vn-1}` lines would expand to 2^27 characters: `hoist plan` must
 * stop at the first line past the limit (Linux MAX_ARG_STRLEN, 32 pages of 4096 bytes) with a
 * Dockerfile error and exit 2, inside a small heap.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { hoist, tempDir } from '@hoist/testkit';

const MAX_ARG_STRLEN = 32 * 4096;

describe('hoist plan on a Dockerfile whose ARGs double 26 times', () => {
  let work: string;
  beforeAll(async () => {
    work = await tempDir('word-limit');
  });
  afterAll(async () => {
    await fsp.rm(work, { recursive: true, force: true });
  });

  it('fails with WordTooLong at the first ARG past the limit, exit 2, in a 96 MiB heap', async () => {
    const lines = ['FROM scratch', 'ARG V0=ab', ...Array.from({ length: 26 }, (_, i) => `ARG V${i + 1}=\${V${i}}\${V${i}}`), 'LABEL x=$V26'];
    await fsp.writeFile(path.join(work, 'Dockerfile'), lines.join('\n') + '\n');
    // Vn is 2 * 2^n characters long: the first n past the limit, and its line
    let n = 0;
    while (2 * 2 ** n <= MAX_ARG_STRLEN) n++;
    const line = lines.indexOf(`ARG V${n}=\${V${n - 1}}\${V${n - 1}}`) + 1;
    const r = await hoist(['plan', '--format', 'json', work], { env: { NODE_OPTIONS: '--max-old-space-size=96' } });
    expect(r.stderr).toMatch(new RegExp(`Dockerfile:${line}:\\d+: error\\[WordTooLong\\]: .*longer than ${MAX_ARG_STRLEN} characters`));
    expect(r.stderr).toContain(`ARG V${n}=`);
    expect(r.stderr).not.toMatch(/internal error|RangeError|^\s+at /m);
    expect(r.code).toBe(2);
  }, 120_000);
});
