#!/usr/bin/env node
// Bundles the CLI (issue 16): packages/cli/bundle/hoist.js is the `hoist` bin. esbuild follows
// the compiled packages (dist/) and keeps every `await import()` a separate chunk, so a command
// loads only what it runs: `hoist version` reads one small file, not the registry client, the
// tar codec, compression or the progress renderer. reclaim-main.js (the watchdog's script) is
// an entry of its own beside the chunks, where the bundled watchdog looks for it.
// meta.json (esbuild's metafile) says which sources each chunk holds; a test reads it.
import { build } from 'esbuild';
import { chmod, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(repo, 'packages/cli/bundle');

await rm(out, { recursive: true, force: true });
const result = await build({
  entryPoints: {
    hoist: join(repo, 'packages/cli/dist/main.js'),
    'reclaim-main': join(repo, 'packages/builder/dist/sandbox/reclaim-main.js'),
  },
  outdir: out,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: 'chunk-[hash]',
  metafile: true,
  logLevel: 'warning',
  // a few dependencies are CommonJS: give their require() calls a real one
  banner: { js: "import { createRequire as __hoistCreateRequire } from 'node:module'; const require = __hoistCreateRequire(import.meta.url);" },
});
await writeFile(join(out, 'meta.json'), JSON.stringify(result.metafile));
await chmod(join(out, 'hoist.js'), 0o755);
