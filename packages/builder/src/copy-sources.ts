import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Image } from '@hoist/oci';
import { createPathMatcher, type CopyInstruction } from '@hoist/parser';
import type { BuildSession } from './session.js';
import { stageInput, type PreparedCopy, type StageInputs, type StageState } from './state.js';
import { materialize, mountLowers } from './materialize.js';
import { collectSources, collectWithParents, digestSources, type PathFilter, type SourceItem } from './sources.js';
import { fetchGit, parseGitRef } from './git-source.js';
import { fetchUrl, isUrl } from './fetch-url.js';
import { archiveKind, type ArchiveKind } from './archive.js';
import { makeTempDir } from './tmp.js';
import { configPlatform } from './platforms.js';
import type { OwnedRoot } from './owner.js';

type Releases = Array<() => Promise<unknown>>;
type Archive = SourceItem & { kind: ArchiveKind };

/** Absolute destination inside the image: relative to WORKDIR, keeping a trailing slash. */
export function absDest(dest: string, workdir: string | undefined): string {
  if (dest.startsWith('/')) return dest;
  const joined = path.posix.join(workdir || '/', dest);
  return dest.endsWith('/') || dest === '.' ? (joined.endsWith('/') ? joined : `${joined}/`) : joined;
}

/** Select the sources of a COPY/ADD and compute its cache inputs (content digests, never mtimes). */
export async function prepareCopy(ctx: BuildSession, ins: CopyInstruction, state: StageState, stages: StageInputs): Promise<PreparedCopy> {
  const releases: Releases = [];
  const release = async (): Promise<void> => {
    for (const r of releases.reverse()) await r();
  };
  try {
    if (ins.fromStage !== undefined || ins.from !== undefined) return await fromOther(ctx, { ins, state, stages, releases, release });
    return await fromContext(ctx, { ins, state, releases, release });
  } catch (e) {
    await release();
    throw e;
  }
}

interface Prep {
  ins: CopyInstruction;
  state: StageState;
  releases: Releases;
  release(): Promise<void>;
}

/**
 * COPY --from another stage or an image. Its content is fully determined by its key or digest:
 * the cache key needs no content digest, so nothing is mounted (or downloaded) unless the step runs.
 */
async function fromOther(ctx: BuildSession, p: Prep & { stages: StageInputs }): Promise<PreparedCopy> {
  const { ins } = p;
  const mountImage = async (img: Image): Promise<OwnedRoot> => {
    await materialize(ctx, img);
    const m = await ctx.opts.snapshotter.mount(mountLowers(img.config.rootfs.diff_ids));
    p.releases.push(() => m.release());
    return m;
  };
  let fromKey: string;
  let mountSource: () => Promise<OwnedRoot>;
  if (ins.fromStage !== undefined) {
    const from = stageInput(p.stages, ins.fromStage);
    fromKey = `stage:${from.key}`;
    mountSource = async () => mountImage((await from.load()).img);
  } else {
    // the image for this stage's platform (a FROM --platform=$BUILDPLATFORM stage: the build's)
    const platform = configPlatform(p.state.img.config);
    const img = await ctx.opts.images.resolve(ins.from!, { platform, ...(ctx.opts.signal ? { signal: ctx.opts.signal } : {}) });
    ctx.layers.add(img.layers);
    fromKey = `image:${img.descriptor.digest}`;
    mountSource = () => mountImage({ config: img.config.value, layers: img.manifest.value.layers });
  }
  const dest = absDest(ins.dest, p.state.img.config.config?.WorkingDir);
  const inputs = { op: ins.add ? 'add' : 'copy', dest, from: fromKey, chown: ins.chown ?? '', chmod: ins.chmod ?? '', link: ins.link, parents: ins.parents, exclude: ins.exclude, sources: ins.sources };
  const exclude = ins.exclude.length > 0 ? createPathMatcher(ins.exclude) : undefined;
  const load = async (): Promise<{ items: SourceItem[]; archives: Archive[]; roots: string[]; source: OwnedRoot }> => {
    const source = await mountSource();
    const srcRoot = source.root;
    // without privileges, the source's owners are in its record (for COPY --from without --chown)
    return { items: await (ins.parents ? collectWithParents : collectSources)(srcRoot, ins.sources, exclude ? { exclude } : {}), archives: [], roots: [srcRoot], source: { root: srcRoot, owners: source.owners } };
  };
  return { inputs, items: [], archives: [], release: p.release, load };
}

/** COPY/ADD from the build context (through .dockerignore), heredocs, URLs and git repositories. */
async function fromContext(ctx: BuildSession, p: Prep): Promise<PreparedCopy> {
  const { ins } = p;
  let root = ctx.opts.contextDir;
  let filter: PathFilter | undefined = ctx.contextFilter;
  let sources = ins.sources;
  if (ins.heredocs.length > 0) {
    const dir = await makeTempDir(ctx.tmpDir, 'heredoc-');
    p.releases.push(() => fsp.rm(dir, { recursive: true, force: true }));
    for (const h of ins.heredocs) await fsp.writeFile(path.join(dir, h.name), h.content, { mode: 0o644 });
    root = dir;
    filter = undefined;
    sources = ins.heredocs.map((h) => h.name);
  }
  const exclude = ins.exclude.length > 0 ? createPathMatcher(ins.exclude) : undefined;
  const urls = ins.add ? sources.filter((s) => isUrl(s) || parseGitRef(s) !== undefined) : [];
  const local = sources.filter((s) => !urls.includes(s));
  const collect = ins.parents ? collectWithParents : collectSources;
  const items = local.length > 0 ? await collect(root, local, { ...(filter ? { filter } : {}), ...(exclude ? { exclude } : {}) }) : [];
  const urlItems = urls.length > 0 ? await fetchRemote(ctx, p, urls) : [];
  const archives: Archive[] = [];
  if (ins.add && ins.unpack !== false) {
    // local archives are recognised by content, not name; URLs only with --unpack
    for (const it of [...items, ...(ins.unpack === true ? urlItems : [])]) {
      const kind = it.stat.isFile() ? await archiveKind(it.entries[0]!.abs) : undefined;
      if (kind) archives.push(Object.assign(it, { kind }));
    }
  }
  items.push(...urlItems);
  const dest = absDest(ins.dest, p.state.img.config.config?.WorkingDir);
  const inputs = {
    op: ins.add ? 'add' : 'copy',
    dest,
    from: 'context',
    chown: ins.chown ?? '',
    chmod: ins.chmod ?? '',
    link: ins.link,
    parents: ins.parents,
    exclude: ins.exclude,
    // through the stat cache: it answers only for files below the context (not heredocs or downloads)
    sources: await digestSources(items, ctx.fileDigests),
    unpack: archives.map((a) => a.path),
  };
  return { inputs, items, archives, release: p.release, load: async () => ({ items, archives, roots: [] }) };
}

/** ADD's URLs and git repositories, fetched into a temporary directory (a checkout is copied like a directory). */
async function fetchRemote(ctx: BuildSession, p: Prep, urls: string[]): Promise<SourceItem[]> {
  const { ins } = p;
  const out: SourceItem[] = [];
  const dir = await makeTempDir(ctx.tmpDir, 'add-url-');
  p.releases.push(() => fsp.rm(dir, { recursive: true, force: true }));
  for (const [i, u] of urls.entries()) {
    const g = parseGitRef(u);
    if (g) {
      const sub = path.join(dir, `git-${i}`);
      await fsp.mkdir(sub);
      const { root: checkout } = await fetchGit(g, sub, { keepGitDir: ins.keepGitDir || g.keepGitDir === true, ...(ins.checksum ? { checksum: ins.checksum } : {}), ...(ctx.opts.signal ? { signal: ctx.opts.signal } : {}) });
      out.push(...(await collectSources(checkout, [''])));
      continue;
    }
    const { name } = await fetchUrl(u, dir, { ...(ins.checksum ? { checksum: ins.checksum } : {}), ...(ctx.opts.signal ? { signal: ctx.opts.signal } : {}) });
    out.push(...(await collectSources(dir, [name])));
  }
  return out;
}
