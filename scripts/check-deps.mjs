#!/usr/bin/env node
// Enforce the one-way package graph of DESIGN.md: every `@hoist/*` import in a package's
// sources must be an allowed, declared dependency. Exit 1 with the offending file otherwise.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(import.meta.url), '..', '..');
export const ALLOWED = {
  oci: [],
  parser: [],
  snapshotter: ['oci'],
  'registry-client': ['oci'],
  builder: ['oci', 'parser', 'snapshotter'],
  exporter: ['oci', 'snapshotter', 'registry-client'],
  cache: ['oci', 'registry-client'],
  testkit: ['oci'],
  cli: ['oci', 'parser', 'snapshotter', 'registry-client', 'builder', 'exporter', 'cache'],
};

function files(dir) {
  const out = [];
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

export function violations() {
  const errs = [];
  for (const [pkg, allowed] of Object.entries(ALLOWED)) {
    const dir = join(root, 'packages', pkg);
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    const declared = Object.keys(manifest.dependencies ?? {}).filter((d) => d.startsWith('@hoist/')).map((d) => d.slice(7));
    for (const d of declared) if (!allowed.includes(d)) errs.push(`packages/${pkg}/package.json depends on @hoist/${d}, which the design forbids`);
    for (const f of files(join(dir, 'src'))) {
      const text = readFileSync(f, 'utf8');
      // a subpath (`@hoist/builder/reclaim`) counts as its package
      for (const m of text.matchAll(/from\s+['"]@hoist\/([\w-]+)(?:\/[\w./-]+)?['"]|import\(\s*['"]@hoist\/([\w-]+)(?:\/[\w./-]+)?['"]\s*\)/g)) {
        const dep = m[1] ?? m[2];
        if (!allowed.includes(dep)) errs.push(`${f.slice(root.length + 1)} imports @hoist/${dep}: ${pkg} may only import ${allowed.join(', ') || 'nothing from hoist'}`);
        else if (!declared.includes(dep)) errs.push(`${f.slice(root.length + 1)} imports @hoist/${dep} but packages/${pkg}/package.json does not declare it`);
      }
    }
  }
  return errs;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const errs = violations();
  for (const e of errs) console.error(e);
  if (errs.length) process.exit(1);
  console.log('package graph ok');
}
