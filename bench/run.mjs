#!/usr/bin/env node
// `npm run bench`: every benchmark in one run, side by side with the reference tools.
// BENCH=name[,name] runs a subset (startup, build, parser, snapshotter, registry, rootless, cache-mounts, multiplatform).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const all = ['startup', 'build', 'parser', 'snapshotter', 'registry', 'rootless', 'cache-mounts', 'multiplatform'];
const only = (process.env.BENCH ?? '').split(',').filter(Boolean);
let failed = 0;
for (const name of only.length ? only : all) {
  const file = join(here, `${name}.mjs`);
  if (!existsSync(file)) {
    console.log(`\n(${name}: no benchmark yet)`);
    continue;
  }
  try {
    const mod = await import(file);
    if (typeof mod.main === 'function') await mod.main();
  } catch (e) {
    failed++;
    console.error(`\nbenchmark ${name} failed: ${e?.stack ?? e}`);
  }
}
process.exit(failed ? 1 : 0);
