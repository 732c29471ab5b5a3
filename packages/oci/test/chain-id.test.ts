/**
 * ChainIDs as the image spec defines them (config.md, "Layer ChainID"): ChainID(L0) = DiffID(L0),
 * ChainID(L0|…|Ln) = sha256(ChainID(L0|…|Ln-1) + " " + DiffID(Ln)). The expected values are
 * computed here with node:crypto from that definition; the snapshotter's chain dirs and the
 * docker-archive layer ids use this one function.
 */
import { createHash } from 'node:crypto';
import { chainIds, type Digest } from '@hoist/oci';

const d = (c: string): Digest => `sha256:${c.repeat(64)}` as Digest;
const spec = (s: string): Digest => `sha256:${createHash('sha256').update(s, 'utf8').digest('hex')}` as Digest;

describe('chainIds', () => {
  it('follows the image spec for one, two and three layers', () => {
    const [a, b, c] = [d('a'), d('b'), d('c')];
    const ab = spec(`${a} ${b}`);
    expect(chainIds([])).toEqual([]);
    expect(chainIds([a])).toEqual([a]);
    expect(chainIds([a, b, c])).toEqual([a, ab, spec(`${ab} ${c}`)]);
  });

  it('depends on the order of the layers', () => {
    expect(chainIds([d('a'), d('b')]).at(-1)).not.toBe(chainIds([d('b'), d('a')]).at(-1));
  });
});
