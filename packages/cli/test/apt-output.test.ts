/** The reader of apt-get's output used by the apt cache-mount test, on output recorded from real runs. */
import { aptBytes, aptReport } from './apt-output.js';

// runner A of e2e-cache-mounts-apt (cold caches), as `--progress plain` shows it
const COLD = [
  '#2 [stage-0 3/3] RUN --mount=type=cache,target=/var/cache/apt,sharing=locked apt-get update && apt-get install -y $PACKAGES',
  '#2 Get:1 http://deb.debian.org/debian bookworm InRelease [151 kB]',
  '#2 Get:2 http://deb.debian.org/debian bookworm/main amd64 Packages [8790 kB]',
  '#2 Fetched 8941 kB in 4s (2267 kB/s)',
  '#2 Reading package lists...',
  '#2 0 upgraded, 2 newly installed, 0 to remove and 0 not upgraded.',
  '#2 Need to get 106 kB of archives.',
  '#2 Get:1 http://deb.debian.org/debian bookworm/main amd64 hello amd64 2.10-3 [53.1 kB]',
  '#2 Get:2 http://deb.debian.org/debian bookworm/main amd64 tree amd64 2.1.0-1 [52.5 kB]',
  '#2 Fetched 106 kB in 0s (1459 kB/s)',
  '#2 Unpacking hello (2.10-3) ...',
  '#2 DONE 15.3s',
].join('\n');

// runner B (warm caches, one package more) against a mirror that answers "not modified"
const WARM = [
  '#2 Hit:1 http://deb.debian.org/debian bookworm InRelease',
  '#2 Reading package lists...',
  '#2 Need to get 132 kB/238 kB of archives.',
  '#2 Get:1 http://deb.debian.org/debian bookworm/main amd64 less amd64 590-2.1~deb12u2 [132 kB]',
  '#2 Fetched 132 kB in 0s (3399 kB/s)',
].join('\n');

describe('aptReport', () => {
  it('tells indexes from .debs and sums what apt fetched', () => {
    expect(aptReport(COLD)).toEqual({
      listGets: ['InRelease', 'Packages'],
      listHits: 0,
      debGets: ['hello', 'tree'],
      needToGet: { bytes: 106_000, total: 106_000 },
      fetched: 8_941_000 + 106_000,
    });
  });

  it('reads index hits and what the archive cache already held', () => {
    expect(aptReport(WARM)).toEqual({ listGets: [], listHits: 1, debGets: ['less'], needToGet: { bytes: 132_000, total: 238_000 }, fetched: 132_000 });
  });

  it('reads apt sizes in decimal units and refuses anything else', () => {
    expect(aptBytes('53.1 kB')).toBe(53_100);
    expect(aptBytes('15.0 MB')).toBe(15_000_000);
    expect(aptBytes('0 B')).toBe(0);
    expect(() => aptBytes('12 KiB')).toThrow(/not an apt size/);
  });
});
