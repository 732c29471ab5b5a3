/**
 * Conformance: every case in fixtures/conformance/ built by hoist and by `buildah bud` (the
 * reference) from the same base images served by one local registry; configs and full file
 * trees compared, minus the differences documented in fixtures/conformance/README.md. Cases
 * whose feature buildah 1.28 lacks check expect.json (the Dockerfile reference's behaviour).
 *
 * CONFORMANCE_ONLY=case1,case2 runs a subset.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import pLimit from 'p-limit';
import { tempDir } from '@hoist/testkit';
import { Buildah, startBaseEnv, type BaseEnv } from './helpers/env.js';
import { startStaticServer, type StaticServer } from './helpers/http.js';
import {
  canonical,
  checkExpectations,
  compareTrees,
  loadCases,
  normaliseConfig,
  normaliseHistory,
  runCase,
  sharedHistory,
  type CaseResult,
  type CaseSpec,
  type Env,
} from './helpers/conformance.js';

const cases: CaseSpec[] = await loadCases();
const results = new Map<string, CaseResult>();
let base: BaseEnv | undefined;
let server: StaticServer | undefined;
let env: Env | undefined;
let work: string;
const timings: string[] = [];

beforeAll(async () => {
  work = await tempDir('conformance');
  const needsDebian = await Promise.all(cases.map(async (c) => /^\s*FROM\s+debian/im.test(await fsp.readFile(path.join(c.dir, 'Dockerfile'), 'utf8'))));
  base = await startBaseEnv({ debian: needsDebian.some(Boolean) });
  await fsp.mkdir(path.join(work, 'ctx'), { recursive: true });
  server = await startStaticServer(path.join(work, 'ctx'));
  env = {
    work,
    store: path.join(work, 'hoist-store'),
    buildah: new Buildah(path.join(work, 'buildah')),
    refs: base.refs,
    http: server.host,
    registryHost: base.registry.host,
  };
  const limit = pLimit(Number(process.env.CONFORMANCE_JOBS ?? 2));
  await Promise.all(
    cases.map((c) =>
      limit(async () => {
        const r = await runCase(c, env!);
        results.set(c.name, r);
        timings.push(`${c.name}: hoist ${r.hoist.ms} ms${r.buildah ? `, buildah ${r.buildah.ms} ms` : ''}`);
      }),
    ),
  );
}, 1_200_000);

afterAll(async () => {
  if (process.env.CONFORMANCE_TIMINGS) console.log(timings.join('\n'));
  await env?.buildah.remove();
  await server?.stop();
  await base?.stop();
  if (work) await fsp.rm(work, { recursive: true, force: true });
}, 120_000);

describe('conformance with buildah bud and the Dockerfile reference', () => {
  it('has at least one case', () => {
    expect(cases.length).toBeGreaterThan(0);
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const r = results.get(c.name);
    expect(r).toBeDefined();
    if (r!.error) throw new Error(r!.error);
    if (c.expect?.fails !== undefined) {
      expect(r!.hoist.ok).toBe(false);
      expect(r!.hoist.output).toContain(`exit ${c.expect.exitCode ?? 1}\n`);
      expect(r!.hoist.output).toContain(c.expect.fails);
      return;
    }
    if (!r!.hoist.ok) throw new Error(`hoist build failed:\n${r!.hoist.output}`);
    const problems: string[] = [];
    if (r!.buildah) {
      if (!r!.buildah.ok) throw new Error(`buildah build failed:\n${r!.buildah.output}`);
      problems.push(...compareTrees(c, r!.buildah.tree!, r!.hoist.tree!).map((d) => `tree ${d}`));
      const want = { ...normaliseConfig(r!.buildah.config!), ...(canonical(c.configOverrides ?? {}) as object) } as Record<string, unknown>;
      for (const k of Object.keys(want)) if (want[k] === null) delete want[k];
      const got = normaliseConfig(r!.hoist.config!);
      // buildah re-appends a variable that ENV overrides, Docker replaces it in place (README)
      if (Array.isArray(want.Env)) want.Env = [...(want.Env as string[])].sort();
      if (Array.isArray(got.Env)) got.Env = [...(got.Env as string[])].sort();
      for (const k of new Set([...Object.keys(want), ...Object.keys(got)])) {
        if (JSON.stringify(want[k]) !== JSON.stringify(got[k])) problems.push(`config ${k}: buildah ${JSON.stringify(want[k])} | hoist ${JSON.stringify(got[k])}`);
      }
      const shared = sharedHistory(r!.hoist.config!, r!.buildah.config!);
      const hb = normaliseHistory(r!.buildah.config!, shared, 'buildah');
      const hh = normaliseHistory(r!.hoist.config!, shared, 'hoist');
      if (JSON.stringify(hb) !== JSON.stringify(hh)) problems.push(`history: buildah ${JSON.stringify(hb)} | hoist ${JSON.stringify(hh)}`);
    }
    if (c.expect) problems.push(...checkExpectations(c.expect, r!.hoist));
    if (problems.length > 0) throw new Error(`${c.name}: ${c.description}\n${problems.join('\n')}\n--- hoist output ---\n${r!.hoist.output.slice(-3000)}`);
  });
});
