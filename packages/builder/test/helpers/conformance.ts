/**
 * The conformance harness: every case under fixtures/conformance/<case>/ is built by hoist and
 * (unless the case says `"reference": "expect"`) by `buildah bud` from the same base images,
 * served by one local registry; then the image configs and the full file trees are compared.
 * Known, documented differences are listed in fixtures/conformance/README.md and applied here.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { hoist, REPO_ROOT } from '@hoist/testkit';
import { describeTree, diffTrees, type Tree, type TreeEntry } from './tree.js';
import { must, run, type Buildah } from './env.js';

export const CASES_DIR = path.join(REPO_ROOT, 'fixtures', 'conformance');

export interface ExpectedFile {
  type?: TreeEntry['type'];
  content?: string;
  mode?: string;
  uid?: number;
  gid?: number;
  link?: string;
  /** Modification time, seconds since the epoch. */
  mtime?: number;
  /** Hard-link count of a regular file (the image's layers hold hard-link entries). */
  nlink?: number;
}

export interface Expectations {
  files?: Record<string, ExpectedFile>;
  absent?: string[];
  /** Subset of the container config that must match exactly (after normalisation). */
  config?: Record<string, unknown>;
  /** Top-level config fields (author, architecture, ...). */
  image?: Record<string, unknown>;
  /** `created_by` / `empty_layer` of the history entries this build added (after the base's). */
  history?: Array<{ created_by: string; empty_layer?: boolean }>;
  manifestMediaType?: string;
  layerMediaType?: string;
  /** Groups of paths that must be one file (hard links: the same inode after unpacking). */
  sameFile?: string[][];
  /** The build must fail with exit status `exitCode` (default 1) and this text in its output. */
  fails?: string;
  exitCode?: number;
}

export interface CaseSpec {
  name: string;
  dir: string;
  description: string;
  /** `buildah`: compare with buildah bud; `expect`: check expect.json only (buildah 1.28 lacks the feature). */
  reference: 'buildah' | 'expect';
  /** Why a case cannot be compared with buildah (for `expect` cases). */
  why?: string;
  buildArgs?: Record<string, string>;
  target?: string;
  secrets?: Record<string, string>;
  hoistArgs?: string[];
  buildahArgs?: string[];
  /** Extra paths to ignore (regular expressions) with the reason, documented in the README. */
  ignore?: Array<{ path: string; reason: string }>;
  /** Paths whose modification times must be equal in both trees. */
  compareMtime?: string[];
  /** Compare the hard-link counts of regular files too (cases about hard links). */
  compareLinks?: boolean;
  /** Images built by hoist first and pushed, usable in FROM by name (e.g. ONBUILD parents). */
  images?: Record<string, string>;
  /** Config fields that differ because of a documented buildah bug: value hoist must have. */
  configOverrides?: Record<string, unknown>;
  expect?: Expectations;
  /** The context (and Dockerfile) live elsewhere, relative to the case directory (an app fixture). */
  context?: string;
  /** Targets of the Dockerfile's RUN --mount flags (filled in by loadCases). */
  mountTargets: string[];
}

/** `RUN --mount` targets named in a Dockerfile (secrets default to /run/secrets/<id>). */
export function mountTargets(dockerfile: string): string[] {
  const out: string[] = [];
  for (const m of dockerfile.matchAll(/--mount=(\S+)/g)) {
    const kv = Object.fromEntries(m[1]!.split(',').map((f) => [f.split('=')[0], f.split('=').slice(1).join('=')]));
    const t = kv.target ?? kv.dst ?? kv.destination;
    if (t) out.push(t);
    else if (kv.type === 'secret') out.push(`/run/secrets/${kv.id}`);
    else if (kv.type === 'ssh') out.push('/run/buildkit/ssh_agent.0');
  }
  return out;
}

export async function loadCases(): Promise<CaseSpec[]> {
  const only = (process.env.CONFORMANCE_ONLY ?? '').split(',').filter(Boolean);
  const out: CaseSpec[] = [];
  for (const name of (await fsp.readdir(CASES_DIR)).sort()) {
    const dir = path.join(CASES_DIR, name);
    if (!(await fsp.stat(dir)).isDirectory() || name.startsWith('_')) continue;
    if (only.length > 0 && !only.includes(name)) continue;
    const spec = JSON.parse(await fsp.readFile(path.join(dir, 'case.json'), 'utf8').catch(() => '{}')) as Partial<CaseSpec>;
    const expectText = await fsp.readFile(path.join(dir, 'expect.json'), 'utf8').catch(() => undefined);
    const src = spec.context ? path.resolve(dir, spec.context) : dir;
    const df = await fsp.readFile(path.join(src, 'Dockerfile'), 'utf8');
    const c: CaseSpec = { description: '', reference: 'buildah', ...spec, name, dir: src, mountTargets: mountTargets(df) };
    if (expectText) c.expect = JSON.parse(expectText) as Expectations;
    out.push(c);
  }
  return out;
}

/** Files of a case dir that are harness metadata, not build context. */
const META = new Set(['case.json', 'expect.json', 'setup.sh', 'Dockerfile.buildah']);

export interface Env {
  work: string;
  store: string;
  buildah: Buildah;
  refs: Record<string, string>;
  http: string;
  registryHost: string;
}

export interface ImageResult {
  ok: boolean;
  output: string;
  config?: ImageConfigJson;
  manifest?: { mediaType?: string; layers: Array<{ mediaType: string }> };
  tree?: Tree;
  ms: number;
}

export interface CaseResult {
  spec: CaseSpec;
  hoist: ImageResult;
  buildah?: ImageResult;
  error?: string;
}

export interface ImageConfigJson {
  author?: string;
  architecture?: string;
  os?: string;
  config?: Record<string, unknown>;
  history?: Array<{ created_by?: string; empty_layer?: boolean; comment?: string }>;
  rootfs?: { diff_ids: string[] };
}

function rewriteRefs(text: string, refs: Record<string, string>, http: string): string {
  let out = text.replace(/@HTTP@/g, http);
  for (const [name, ref] of Object.entries(refs)) {
    const re = new RegExp(`(^\\s*FROM\\s+(?:--platform=\\S+\\s+)?|--from=|\\bfrom=)${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?::[\\w.-]+)?(?=[\\s,"]|$)`, 'gim');
    out = out.replace(re, (_m, pre: string) => `${pre}${ref}`);
  }
  return out;
}

/** Copy the case into a fresh context, run its setup.sh, write the rewritten Dockerfile(s). */
export async function prepareContext(c: CaseSpec, env: Env): Promise<{ ctx: string; hoistDf: string; buildahDf: string; secrets: string[] }> {
  const ctx = path.join(env.work, 'ctx', c.name);
  await fsp.rm(ctx, { recursive: true, force: true });
  await fsp.mkdir(ctx, { recursive: true });
  for (const n of await fsp.readdir(c.dir)) {
    if (META.has(n)) continue;
    await fsp.cp(path.join(c.dir, n), path.join(ctx, n), { recursive: true, verbatimSymlinks: true });
  }
  if (await fsp.stat(path.join(c.dir, 'setup.sh')).catch(() => undefined)) {
    await must('bash', [path.join(c.dir, 'setup.sh')], { cwd: ctx });
  }
  const http = `${env.http}/${c.name}`;
  const df = await fsp.readFile(path.join(c.dir, 'Dockerfile'), 'utf8');
  await fsp.writeFile(path.join(ctx, 'Dockerfile'), rewriteRefs(df, env.refs, http));
  const buildahDf = path.join(env.work, 'ctx', `${c.name}.buildah.Dockerfile`);
  const bdf = await fsp.readFile(path.join(c.dir, 'Dockerfile.buildah'), 'utf8').catch(() => df);
  await fsp.writeFile(buildahDf, rewriteRefs(bdf, env.refs, http));
  const secrets: string[] = [];
  for (const [id, content] of Object.entries(c.secrets ?? {})) {
    const f = path.join(env.work, 'ctx', `${c.name}.secret.${id}`);
    await fsp.writeFile(f, content);
    secrets.push('--secret', `id=${id},src=${f}`);
  }
  return { ctx, hoistDf: path.join(ctx, 'Dockerfile'), buildahDf, secrets };
}

function commonArgs(c: CaseSpec, secrets: string[]): string[] {
  const a: string[] = [];
  for (const [k, v] of Object.entries(c.buildArgs ?? {})) a.push('--build-arg', `${k}=${v}`);
  if (c.target) a.push('--target', c.target);
  return [...a, ...secrets];
}

/** The image reference hoist tags a case with. */
export function hoistRef(c: CaseSpec): string {
  return `conformance/${c.name}:1`;
}

async function unpackLayout(env: Env, src: string, name: string): Promise<Tree> {
  const layout = path.join(env.work, 'layouts', name);
  const bundle = path.join(env.work, 'bundles', name);
  await fsp.rm(layout, { recursive: true, force: true });
  await fsp.rm(bundle, { recursive: true, force: true });
  await fsp.mkdir(path.dirname(bundle), { recursive: true });
  await fsp.mkdir(path.dirname(layout), { recursive: true });
  await must('skopeo', ['copy', '-q', ...(src.startsWith('docker://') ? ['--src-tls-verify=false'] : []), src, `oci:${layout}:t`]);
  await must('umoci', ['unpack', '--image', `${layout}:t`, bundle]);
  try {
    return await describeTree(path.join(bundle, 'rootfs'));
  } finally {
    await fsp.rm(layout, { recursive: true, force: true });
    await fsp.rm(bundle, { recursive: true, force: true });
  }
}

export async function buildWithHoist(c: CaseSpec, env: Env, p: { ctx: string; hoistDf: string; secrets: string[] }): Promise<ImageResult> {
  const t0 = Date.now();
  const args = ['build', '--root', env.store, '--progress', 'plain', '-t', hoistRef(c), '-f', p.hoistDf, ...commonArgs(c, p.secrets), ...(c.hoistArgs ?? []), p.ctx];
  const r = await hoist(args, { timeoutMs: 600_000 });
  const ms = Date.now() - t0;
  const output = `${r.stderr}${r.stdout}`;
  if (r.code !== 0) return { ok: false, output: `exit ${r.code}\n${output}`, ms };
  const ins = await hoist(['inspect', '--root', env.store, hoistRef(c)]);
  const parsed = JSON.parse(ins.stdout) as { config: ImageConfigJson; manifest: ImageResult['manifest'] };
  let src = `oci:${env.store}/oci:docker.io/${hoistRef(c)}`;
  if (parsed.manifest?.mediaType === 'application/vnd.docker.distribution.manifest.v2+json') {
    // skopeo's oci: transport only lists OCI manifests: read a Docker-format image via the registry
    const remote = `${env.registryHost}/conformance/${c.name}:hoist`;
    const p = await hoist(['push', '--root', env.store, '--progress', 'quiet', hoistRef(c), remote]);
    if (p.code !== 0) throw new Error(`push ${remote}: ${p.stderr}`);
    src = `docker://${remote}`;
  }
  const tree = await unpackLayout(env, src, `hoist-${c.name}`);
  return { ok: true, output, config: parsed.config, manifest: parsed.manifest!, tree, ms };
}

export async function buildWithBuildah(c: CaseSpec, env: Env, p: { ctx: string; buildahDf: string; secrets: string[] }): Promise<ImageResult> {
  const t0 = Date.now();
  const tag = `conformance-${c.name}`;
  const r = await env.buildah.bud(['--format', 'docker', '-t', tag, '-f', p.buildahDf, ...commonArgs(c, p.secrets), ...(c.buildahArgs ?? [])], p.ctx);
  const ms = Date.now() - t0;
  const output = `${r.stderr}${r.stdout}`;
  if (r.code !== 0) return { ok: false, output: `exit ${r.code}\n${output}`, ms };
  const inspect = JSON.parse(await env.buildah.must(['inspect', '--type', 'image', tag])) as { Docker: ImageConfigJson };
  const config = inspect.Docker;
  let tree: Tree;
  if (((config.config?.OnBuild as string[] | undefined) ?? []).length > 0) {
    // `buildah from` would run the ONBUILD triggers: read the image through a layout instead
    const dir = path.join(env.work, 'layouts', `buildah-src-${c.name}`);
    await fsp.rm(dir, { recursive: true, force: true });
    await fsp.mkdir(path.dirname(dir), { recursive: true });
    await env.buildah.must(['push', '--disable-compression', tag, `oci:${dir}:t`]);
    tree = await unpackLayout(env, `oci:${dir}:t`, `buildah-${c.name}`);
    await fsp.rm(dir, { recursive: true, force: true });
  } else {
    const name = `conformance-${c.name}-ctr`;
    await env.buildah.run(['rm', name]);
    await env.buildah.must(['from', '--pull-never', '--name', name, tag]);
    try {
      const mp = (await env.buildah.must(['mount', name])).trim();
      tree = await describeTree(mp);
    } finally {
      await env.buildah.run(['umount', name]);
      await env.buildah.run(['rm', name]);
    }
  }
  return { ok: true, output, config, tree, ms };
}

/** Images a case builds first (with hoist) and pushes, so that both builders use the same parent. */
export async function buildCaseImages(c: CaseSpec, env: Env): Promise<Record<string, string>> {
  const refs: Record<string, string> = {};
  for (const [name, file] of Object.entries(c.images ?? {})) {
    const ref = `${env.registryHost}/conformance/${c.name}-${name}:latest`;
    const ctx = path.join(env.work, 'ctx', `${c.name}-${name}`);
    await fsp.mkdir(ctx, { recursive: true });
    const df = rewriteRefs(await fsp.readFile(path.join(c.dir, file), 'utf8'), env.refs, `${env.http}/${c.name}`);
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), df);
    const r = await hoist(['build', '--root', env.store, '--progress', 'plain', '-t', ref, '--push', ctx]);
    if (r.code !== 0) throw new Error(`building ${name} for ${c.name}: ${r.stderr}`);
    refs[name] = ref;
  }
  return refs;
}

export async function runCase(c: CaseSpec, baseEnv: Env): Promise<CaseResult> {
  try {
    const extra = await buildCaseImages(c, baseEnv);
    const env = { ...baseEnv, refs: { ...baseEnv.refs, ...extra } };
    const p = await prepareContext(c, env);
    const [h, b] = await Promise.all([
      buildWithHoist(c, env, p),
      c.reference === 'buildah' ? buildWithBuildah(c, env, p) : Promise.resolve(undefined),
    ]);
    return b ? { spec: c, hoist: h, buildah: b } : { spec: c, hoist: h };
  } catch (e) {
    return { spec: c, hoist: { ok: false, output: '', ms: 0 }, error: String((e as Error).stack ?? e) };
  }
}

// ---------------------------------------------------------------------------------------------
// comparison

const CONFIG_FIELDS = ['Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'Labels', 'StopSignal', 'Healthcheck', 'OnBuild', 'Shell'];

function isEmpty(v: unknown): boolean {
  if (v === undefined || v === null || v === '') return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === 'object') return Object.keys(v as object).length === 0;
  return false;
}

/** The config fields Docker defines, with empty values dropped and buildah's own label removed. */
export function normaliseConfig(cfg: ImageConfigJson): Record<string, unknown> {
  const c = cfg.config ?? {};
  const out: Record<string, unknown> = {};
  for (const f of CONFIG_FIELDS) {
    let v = c[f];
    if (f === 'Labels' && v) {
      const l = { ...(v as Record<string, string>) };
      delete l['io.buildah.version'];
      v = l;
    }
    if (!isEmpty(v)) out[f] = v;
  }
  if (cfg.author) out.author = cfg.author;
  out.platform = `${cfg.os}/${cfg.architecture}`;
  return canonical(out) as Record<string, unknown>;
}

/** Objects with sorted keys (key order carries no meaning in a config). */
export function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]));
  return v;
}

/**
 * History as (instruction, has-a-layer) pairs after the base image's entries. buildah writes
 * `/bin/sh -c #(nop) KEYWORD ...` for metadata and the bare command for RUN; BuildKit writes
 * `KEYWORD ...`. WORKDIR's layer flag and buildah's ONBUILD entries are documented differences.
 */
export function normaliseHistory(cfg: ImageConfigJson, baseEntries: number, tool: 'hoist' | 'buildah'): string[] {
  // base entries are identical in both images: skip them
  const out: string[] = [];
  for (const h of (cfg.history ?? []).slice(baseEntries)) {
    const by = h.created_by ?? '';
    let kw: string;
    if (tool === 'buildah') {
      const nop = /#\(nop\) (\S+)/.exec(by);
      kw = nop ? nop[1]!.toUpperCase() : 'RUN';
      if (kw === 'ONBUILD') continue;
    } else {
      kw = by.split(' ')[0]!.toUpperCase();
    }
    out.push(kw === 'WORKDIR' ? kw : `${kw}${h.empty_layer ? '' : ' +layer'}`);
  }
  return out;
}

/** buildah's chroot RUN leaves these mount points behind when they were missing; BuildKit does not. */
const BUILDAH_MOUNTPOINTS = new Set(['/etc/hostname', '/run', '/etc/hosts', '/etc/resolv.conf']);

export function treeIgnore(c: CaseSpec, buildahTree: Tree): (p: string, ref: TreeEntry | undefined, ours: TreeEntry | undefined) => boolean {
  const extra = (c.ignore ?? []).map((i) => new RegExp(i.path));
  return (p, ref, ours) => {
    if (extra.some((re) => re.test(p))) return true;
    const stub = BUILDAH_MOUNTPOINTS.has(p) || c.mountTargets.some((t) => t === p || t.startsWith(`${p}/`));
    if (stub && ref && !ours) {
      // a mount point (or a parent made for one) that buildah leaves behind, still empty
      const emptyFile = ref.type === 'file' && ref.size === 0;
      const emptyDir = ref.type === 'dir' && [...buildahTree.keys()].every((k) => !k.startsWith(`${p}/`) || c.mountTargets.some((t) => t === k || t.startsWith(`${k}/`)));
      return emptyFile || emptyDir;
    }
    return false;
  };
}

export function compareTrees(c: CaseSpec, buildahTree: Tree, hoistTree: Tree): string[] {
  const diffs = diffTrees(buildahTree, hoistTree, treeIgnore(c, buildahTree));
  for (const p of c.compareMtime ?? []) {
    const a = buildahTree.get(p)?.mtime;
    const b = hoistTree.get(p)?.mtime;
    if (a !== b) diffs.push(`${p}: mtime reference ${a} | hoist ${b}`);
  }
  if (c.compareLinks) {
    for (const [p, ref] of buildahTree) {
      const ours = hoistTree.get(p);
      if (ref.type === 'file' && ours?.type === 'file' && ref.nlink !== ours.nlink) diffs.push(`${p}: nlink reference ${ref.nlink} | hoist ${ours.nlink}`);
    }
  }
  return diffs;
}

/** Each group of paths must be one regular file (same inode). */
function checkSameFiles(groups: string[][], tree: Tree): string[] {
  const problems: string[] = [];
  for (const group of groups) {
    const inodes = group.map((p) => tree.get(p)).map((e) => (e?.type === 'file' ? e.ino : undefined));
    if (inodes.some((i) => i === undefined) || new Set(inodes).size !== 1) problems.push(`${group.join(', ')}: not one file (inodes ${inodes.join(', ')})`);
  }
  return problems;
}

export function checkExpectations(e: Expectations, r: ImageResult): string[] {
  const problems: string[] = [];
  const tree = r.tree!;
  for (const [p, want] of Object.entries(e.files ?? {})) {
    const got = tree.get(p);
    if (!got) {
      problems.push(`${p}: missing`);
      continue;
    }
    if (want.type && got.type !== want.type) problems.push(`${p}: type ${got.type}, want ${want.type}`);
    if (want.mode && got.mode !== want.mode.padStart(4, '0')) problems.push(`${p}: mode ${got.mode}, want ${want.mode}`);
    if (want.uid !== undefined && got.uid !== want.uid) problems.push(`${p}: uid ${got.uid}, want ${want.uid}`);
    if (want.gid !== undefined && got.gid !== want.gid) problems.push(`${p}: gid ${got.gid}, want ${want.gid}`);
    if (want.link !== undefined && got.link !== want.link) problems.push(`${p}: link ${got.link}, want ${want.link}`);
    if (want.mtime !== undefined && got.mtime !== want.mtime) problems.push(`${p}: mtime ${got.mtime}, want ${want.mtime}`);
    if (want.content !== undefined && got.content !== want.content) problems.push(`${p}: content ${JSON.stringify(got.content)}, want ${JSON.stringify(want.content)}`);
    if (want.nlink !== undefined && got.nlink !== want.nlink) problems.push(`${p}: nlink ${got.nlink}, want ${want.nlink}`);
  }
  problems.push(...checkSameFiles(e.sameFile ?? [], tree));
  for (const p of e.absent ?? []) if (tree.has(p)) problems.push(`${p}: present, want absent`);
  const cfg = normaliseConfig(r.config!);
  for (const [k, v] of Object.entries(e.config ?? {})) {
    if (JSON.stringify(cfg[k] ?? null) !== JSON.stringify(v)) problems.push(`config ${k}: ${JSON.stringify(cfg[k])}, want ${JSON.stringify(v)}`);
  }
  for (const [k, v] of Object.entries(e.image ?? {})) {
    const got = (r.config as Record<string, unknown>)[k];
    if (JSON.stringify(got ?? null) !== JSON.stringify(v)) problems.push(`image ${k}: ${JSON.stringify(got)}, want ${JSON.stringify(v)}`);
  }
  if (e.history) {
    const got = (r.config!.history ?? []).slice(-e.history.length).map((h) => ({ created_by: h.created_by ?? '', empty_layer: !!h.empty_layer }));
    const want = e.history.map((h) => ({ created_by: h.created_by, empty_layer: !!h.empty_layer }));
    if (JSON.stringify(got) !== JSON.stringify(want)) problems.push(`history:\n  got  ${JSON.stringify(got)}\n  want ${JSON.stringify(want)}`);
  }
  if (e.manifestMediaType && r.manifest?.mediaType !== e.manifestMediaType) problems.push(`manifest mediaType ${r.manifest?.mediaType}, want ${e.manifestMediaType}`);
  if (e.layerMediaType && r.manifest?.layers.some((l) => l.mediaType !== e.layerMediaType)) problems.push(`layer mediaType ${r.manifest?.layers.map((l) => l.mediaType).join(',')}, want ${e.layerMediaType}`);
  return problems;
}

export async function cleanupCaseImages(env: Env, c: CaseSpec): Promise<void> {
  await run('rm', ['-rf', path.join(env.work, 'ctx', c.name)]);
}

/** How many leading history entries two images share (the base image's). */
export function sharedHistory(a: ImageConfigJson, b: ImageConfigJson): number {
  const ha = a.history ?? [];
  const hb = b.history ?? [];
  let i = 0;
  while (i < ha.length && i < hb.length && ha[i]!.created_by === hb[i]!.created_by) i++;
  return i;
}
