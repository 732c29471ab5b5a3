#!/usr/bin/env node
// The `hoist` bin. It is checked in (not built) so that `npm install` on a fresh clone links
// node_modules/.bin/hoist before anything is built, and `npx hoist` runs this project's CLI
// instead of fetching an unrelated public package named `hoist`. It starts the built CLI:
// the bundle (packages/cli/bundle/hoist.js) when there is one, else tsc's output.
import { existsSync } from 'node:fs';

const bundle = new URL('../bundle/hoist.js', import.meta.url);
const dist = new URL('../dist/main.js', import.meta.url);
const entry = existsSync(bundle) ? bundle : existsSync(dist) ? dist : undefined;
if (entry) {
  await import(entry.href);
} else {
  process.stderr.write('hoist: the CLI is not built yet: run `npm run build` (or `bash scripts/setup.sh`) in the repository\n');
  process.exitCode = 1;
}
