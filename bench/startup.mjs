// Start-up benchmark (issue 16): `hoist version` against `node -e 0`, interleaved, best and
// median of BENCH_STARTUP_RUNS (default 30) runs each; target hoist/node <= 1.30. Where
// NODE_EXTRA_CA_CERTS is set, Node also starts without it (the hoist bin defers that file).
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sh, median, table, fmt } from './lib.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const hoistBin = path.join(repo, 'packages/cli/bin/hoist');
const bundle = path.join(repo, 'packages/cli/bundle/hoist.js');
const RUNS = Number(process.env.BENCH_STARTUP_RUNS ?? 30);

export async function main() {
  const cmds = {
    'node -e 0': [process.execPath, ['-e', '0']],
    ...(process.env.NODE_EXTRA_CA_CERTS ? { 'node -e 0, without NODE_EXTRA_CA_CERTS': ['env', ['-u', 'NODE_EXTRA_CA_CERTS', process.execPath, '-e', '0']] } : {}),
    'hoist version (the bin)': [hoistBin, ['version']],
    'node bundle/hoist.js version': [process.execPath, [bundle, 'version']],
    'node dist/main.js version (unbundled)': [process.execPath, [path.join(repo, 'packages/cli/dist/main.js'), 'version']],
  };
  const times = Object.fromEntries(Object.keys(cmds).map((k) => [k, []]));
  const before = os.loadavg()[0].toFixed(2);
  for (let i = 0; i < RUNS + 3; i++) {
    for (const [k, [cmd, args]] of Object.entries(cmds)) {
      const { ms } = await sh(cmd, args);
      if (i >= 3) times[k].push(ms); // three warm-up rounds
    }
  }
  const base = Math.min(...times['node -e 0']);
  const rows = Object.entries(times).map(([k, t]) => [k, fmt(Math.min(...t)), fmt(median(t)), (Math.min(...t) / base).toFixed(2)]);
  table(`start-up (best and median of ${RUNS}, interleaved; target hoist version <= 1.30 x node -e 0)`, ['command', 'best', 'median', 'best / node -e 0'], rows);
  console.log(`\nload average (1 min): ${before} before, ${os.loadavg()[0].toFixed(2)} after`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
