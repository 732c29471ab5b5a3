#!/usr/bin/env node
// No import cycles between the source files of any package (DESIGN.md section 3.1): type-only
// imports count too. Lists each cycle (a strongly connected component of the file graph) and
// exits 1 when there is one. Imports are read with TypeScript's own pre-processor.
import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = join(fileURLToPath(import.meta.url), '..', '..');

function sources(dir) {
  const out = [];
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** The file a relative specifier names (`./x.js` is `./x.ts`), or undefined for packages. */
function target(from, spec) {
  if (!spec.startsWith('.')) return undefined;
  const abs = resolve(dirname(from), spec);
  for (const c of [abs.replace(/\.js$/, '.ts'), `${abs}.ts`, join(abs, 'index.ts')]) if (existsSync(c)) return c;
  return undefined;
}

/** file -> files it imports, over every package's src/. */
export function moduleGraph() {
  const graph = new Map();
  for (const pkg of readdirSync(join(root, 'packages'))) {
    const src = join(root, 'packages', pkg, 'src');
    if (!existsSync(src)) continue;
    for (const f of sources(src)) {
      const info = ts.preProcessFile(readFileSync(f, 'utf8'), true, true);
      graph.set(f, [...new Set(info.importedFiles.map((i) => target(f, i.fileName)).filter(Boolean))]);
    }
  }
  return graph;
}

/** Strongly connected components with more than one file (or a file importing itself): Tarjan. */
export function cycles(graph = moduleGraph()) {
  let next = 0;
  const index = new Map();
  const low = new Map();
  const stack = [];
  const on = new Set();
  const out = [];
  const visit = (v) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc = [];
    let w;
    do {
      w = stack.pop();
      on.delete(w);
      scc.push(relative(root, w));
    } while (w !== v);
    if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(scc.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const found = cycles();
  for (const c of found) console.error(`import cycle: ${c.join(' <-> ')}`);
  process.exit(found.length > 0 ? 1 : 0);
}
