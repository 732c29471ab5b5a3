import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Descriptor, Digest } from '@hoist/oci';
import { createPathMatcher, type CopyInstruction, type Stage, type Step } from '@hoist/parser';
import type { Mounted } from '@hoist/snapshotter';
import type { BuildContext, StageState } from './context.js';
import { materialize, mountLowers, withMountedImage } from './materialize.js';
import { keyStage, runStage } from './stage.js';
import { collectSources, collectWithParents, digestSources, type PathFilter, type SourceItem } from './sources.js';
import { fetchGit, parseGitRef } from './git-source.js';
import { copyInto } from './copy.js';
import { resolveChown } from './rootfs.js';
import { commitOptions } from './run-step.js';
import { fetchUrl, isUrl } from './fetch-url.js';
import { archiveKind, unpackArchive, type ArchiveKind } from './archive.js';
import { makeTempDir } from './tmp.js';
import { executeLinkedCopy } from './link-copy.js';
import { copyPathViews, copyStepError } from './host-paths.js';

export interface PreparedCopy {
  inputs: Record<string, unknown>;
  items: SourceItem[];
  /** Local archives ADD must unpack rather than copy. */
  archives: Array<SourceItem & { kind: ArchiveKind }>;
  release(): Promise<void>;
  /**
   * The sources to copy (mounts another stage or image only now, when the step runs), and the
   * roots mounted for them (errors name their paths as the source image sees them).
   */
  load(): Promise<{ items: SourceItem[]; archives: Array<SourceItem & { kind: ArchiveKind }>; roots: string[] }>;
}

/** Absolute destination inside the image: relative to WORKDIR, keeping a trailing slash. */
export function absDest(dest: string, workdir: string | undefined): string {
  if (dest.startsWith('/')) return dest;
  const joined = path.posix.join(workdir || '/', dest);
  return dest.endsWith('/') || dest === '.' ? (joined.endsWith('/') ? joined : `${joined}/`) : joined;
}

/** Select the sources of a COPY/ADD and compute its cache inputs (content digests, never mtimes). */
export async function prepareCopy(ctx: BuildContext, _stage: Stage, _step: Step, ins: CopyInstruction, state: StageState): Promise<PreparedCopy> {
  const releases: Array<() => Promise<unknown>> = [];
  const release = async (): Promise<void> => {
    for (const r of releases.reverse()) await r();
  };
  try {
    let root = ctx.opts.contextDir;
    let filter: PathFilter | undefined = ctx.contextFilter;
    let fromKey: string | undefined;
    // Another stage's or image's content is fully determined by its key or digest: the cache
    // key needs no content digest, so nothing is mounted (or downloaded) unless the step runs.
    let mountSource: (() => Promise<string>) | undefined;
    if (ins.fromStage !== undefined) {
      const fromStage = ins.fromStage;
      fromKey = `stage:${(await keyStage(ctx, fromStage)).key}`;
      mountSource = async () => {
        const st = await runStage(ctx, fromStage);
        await materialize(ctx, st.img);
        const m: Mounted = await ctx.opts.snapshotter.mount(mountLowers(st.img.config.rootfs.diff_ids));
        releases.push(() => m.release());
        return m.root;
      };
      filter = undefined;
    } else if (ins.from !== undefined) {
      const img = await ctx.opts.images.resolve(ins.from, { platform: ctx.platform, ...(ctx.opts.signal ? { signal: ctx.opts.signal } : {}) });
      ctx.bases.set(ins.from, img);
      fromKey = `image:${img.descriptor.digest}`;
      mountSource = async () => {
        await materialize(ctx, { config: img.config.value, layers: img.manifest.value.layers });
        const m: Mounted = await ctx.opts.snapshotter.mount(mountLowers(img.config.value.rootfs.diff_ids));
        releases.push(() => m.release());
        return m.root;
      };
      filter = undefined;
    }
    if (mountSource) {
      const dest = absDest(ins.dest, state.img.config.config?.WorkingDir);
      const inputs = { op: ins.add ? 'add' : 'copy', dest, from: fromKey, chown: ins.chown ?? '', chmod: ins.chmod ?? '', link: ins.link, parents: ins.parents, exclude: ins.exclude, sources: ins.sources };
      const load = mountSource;
      const exclude = ins.exclude.length > 0 ? createPathMatcher(ins.exclude) : undefined;
      return {
        inputs,
        items: [],
        archives: [],
        release,
        load: async () => {
          const srcRoot = await load();
          return { items: await (ins.parents ? collectWithParents : collectSources)(srcRoot, ins.sources, exclude ? { exclude } : {}), archives: [], roots: [srcRoot] };
        },
      };
    }
    const exclude = ins.exclude.length > 0 ? createPathMatcher(ins.exclude) : undefined;
    let sources = ins.sources;
    if (ins.heredocs.length > 0) {
      const dir = await makeTempDir(ctx.tmpDir, 'heredoc-');
      releases.push(() => fsp.rm(dir, { recursive: true, force: true }));
      for (const h of ins.heredocs) await fsp.writeFile(path.join(dir, h.name), h.content, { mode: 0o644 });
      root = dir;
      filter = undefined;
      sources = ins.heredocs.map((h) => h.name);
    }
    const urls = ins.add ? sources.filter((s) => isUrl(s) || parseGitRef(s) !== undefined) : [];
    const local = sources.filter((s) => !urls.includes(s));
    const collect = ins.parents ? collectWithParents : collectSources;
    const items = local.length > 0 ? await collect(root, local, { ...(filter ? { filter } : {}), ...(exclude ? { exclude } : {}) }) : [];
    const urlItems: SourceItem[] = [];
    if (urls.length > 0) {
      const dir = await makeTempDir(ctx.tmpDir, 'add-url-');
      releases.push(() => fsp.rm(dir, { recursive: true, force: true }));
      for (const [i, u] of urls.entries()) {
        const g = parseGitRef(u);
        if (g) {
          // a repository: its checkout's contents are copied, like a directory's
          const sub = path.join(dir, `git-${i}`);
          await fsp.mkdir(sub);
          const { root: checkout } = await fetchGit(g, sub, { keepGitDir: ins.keepGitDir || g.keepGitDir === true, ...(ins.checksum ? { checksum: ins.checksum } : {}), ...(ctx.opts.signal ? { signal: ctx.opts.signal } : {}) });
          urlItems.push(...(await collectSources(checkout, [''])));
          continue;
        }
        const name = await fetchUrl(u, dir, ins.checksum, ctx.opts.signal);
        urlItems.push(...(await collectSources(dir, [name])));
      }
    }
    const archives: Array<SourceItem & { kind: ArchiveKind }> = [];
    if (ins.add && ins.unpack !== false && ins.fromStage === undefined && ins.from === undefined) {
      // local archives are recognised by content, not name; URLs only with --unpack
      for (const it of [...items, ...(ins.unpack === true ? urlItems : [])]) {
        const kind = it.stat.isFile() ? await archiveKind(it.entries[0]!.abs) : undefined;
        if (kind) archives.push(Object.assign(it, { kind }));
      }
    }
    items.push(...urlItems);
    const dest = absDest(ins.dest, state.img.config.config?.WorkingDir);
    const inputs = {
      op: ins.add ? 'add' : 'copy',
      dest,
      from: fromKey ?? 'context',
      chown: ins.chown ?? '',
      chmod: ins.chmod ?? '',
      link: ins.link,
      parents: ins.parents,
      exclude: ins.exclude,
      // context files through the stat cache; stage roots and downloads are hashed as they are
      sources: await digestSources(items, fromKey === undefined ? ctx.fileDigests : undefined),
      unpack: archives.map((a) => a.path),
    };
    return { inputs, items, archives, release, load: async () => ({ items, archives, roots: [] }) };
  } catch (e) {
    await release();
    throw e;
  }
}

export async function executeCopy(
  ctx: BuildContext,
  _step: Step,
  ins: CopyInstruction,
  state: StageState,
  prepared: PreparedCopy,
): Promise<{ descriptor: Descriptor; diffId: Digest }> {
  const { items, archives, roots } = await prepared.load();
  const dest = absDest(ins.dest, state.img.config.config?.WorkingDir);
  if (ins.link) return executeLinkedCopy(ctx, ins, state, prepared.inputs, { items, archives, dest, roots });
  return ctx.limit(() =>
    withMountedImage(ctx, state.img, async (m) => {
      try {
        const owner = ins.chown ? await resolveChown(m.root, ins.chown) : undefined;
        const createdTime = ctx.opts.sourceDateEpoch ?? Math.floor(Date.now() / 1000);
        const plain = items.filter((i) => !archives.some((a) => a === i));
        if (plain.length > 0) {
          await copyInto(m.root, plain, {
            dest,
            ...(owner ? { owner } : {}),
            // files from another stage or image keep their owners unless --chown is given
            preserveOwner: ins.fromStage !== undefined || ins.from !== undefined,
            createdTime,
            ...(ins.chmod ? { chmod: ins.chmod } : {}),
          });
        }
        for (const a of archives) await unpackArchive({ root: m.root, archive: a.entries[0]!.abs, kind: a.kind, dest, createdTime, ...(owner ? { owner } : {}) });
        const r = await m.commit(commitOptions(ctx));
        return { descriptor: r.descriptor, diffId: r.diffId };
      } catch (e) {
        throw copyStepError(e, copyPathViews(ctx.opts.root, [m.root, ...roots]));
      }
    }),
  );
}
