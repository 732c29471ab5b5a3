import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Platform } from '@hoist/oci';
import type { RunInstruction, RunMount } from '@hoist/parser';
import type { Mounted } from '@hoist/snapshotter';
import { BuildError } from './errors.js';
import { makeTempDir } from './tmp.js';
import { collectSources } from './sources.js';
import { copyInto } from './copy.js';
import type { BuildSession } from './session.js';
import { materialize, mountLowers } from './materialize.js';
import { stageInput, type StageInputs } from './state.js';
import { stageRef } from './stage-ref.js';
import { lstatOnce, secureJoin, type Lstat, type ResolvedUser } from './rootfs.js';
import type { SandboxMount } from './sandbox/spec.js';
import { cacheMountKey } from './cache-mounts.js';
import { setOwner } from './owner.js';

export interface PreparedMounts {
  mounts: SandboxMount[];
  env: string[];
  cleanup: Array<() => Promise<unknown>>;
  release(): Promise<void>;
}

/** Mount points the runtime creates in the root (targets of our mounts) that did not exist before. */
export interface CreatedPath {
  /** First path component that did not exist. */
  abs: string;
  /** The mount target below it (or itself). */
  target: string;
  parentMtime?: Date;
}

/**
 * The first component of `target` (resolved in `root` as the runtime will, symlinks re-rooted)
 * that does not exist: what the runtime creates for the mount and what is removed afterwards.
 */
export async function missingPaths(root: string, target: string, lstat: Lstat): Promise<CreatedPath[]> {
  const out: CreatedPath[] = [];
  const targetAbs = await secureJoin(root, target, { lstat });
  let cur = '/';
  for (const part of target.split('/').filter(Boolean)) {
    const parent = await secureJoin(root, cur, { lstat });
    cur = path.posix.join(cur, part);
    const abs = await secureJoin(root, cur, { lstat });
    if ((await lstat(abs)) === undefined) {
      const pst = await fsp.stat(parent).catch(() => undefined);
      out.push(pst ? { abs, target: targetAbs, parentMtime: pst.mtime } : { abs, target: targetAbs });
      break; // everything below is missing too; removing this one removes them
    }
  }
  return out;
}

type Mount<T extends RunMount['type']> = Extract<RunMount, { type: T }>;

/** What the mounts of one RUN collect: sandbox mounts, env, and what to undo afterwards. */
interface MountSet {
  ctx: BuildSession;
  run: RunMountsArgs;
  mounts: SandboxMount[];
  env: string[];
  cleanup: Array<() => Promise<unknown>>;
  created: CreatedPath[];
  held: Mounted[];
  /** The root's lstats, each path once: nothing writes to the root while the mounts are prepared. */
  lstat: Lstat;
}

export interface RunMountsArgs {
  ins: RunInstruction;
  root: string;
  user: ResolvedUser;
  stages: StageInputs;
  /** The stage's platform: an image named by `from=` is resolved for it. */
  platform: Platform;
}

/** Note a mount target, to remove what the runtime creates for it afterwards. */
async function note(set: MountSet, target: string): Promise<void> {
  set.created.push(...(await missingPaths(set.run.root, target, set.lstat)));
}

/** The runtime's own mount points in every RUN (spec.ts), noted side by side (in this order). */
const SANDBOX_TARGETS = ['/etc/hosts', '/etc/resolv.conf', '/proc', '/sys', '/dev'];

async function noteSandboxTargets(set: MountSet): Promise<void> {
  const found = await Promise.all(SANDBOX_TARGETS.map((t) => missingPaths(set.run.root, t, set.lstat)));
  set.created.push(...found.flat());
}

/**
 * Root of a mount source — the context, another stage of this Dockerfile, or an image — and
 * what identifies its content (the stage's cache key, the image's digest).
 */
async function mountSource(set: MountSet, from: string | undefined): Promise<{ root: string; identity: string }> {
  const { ctx } = set;
  if (from === undefined) return { root: ctx.opts.contextDir, identity: 'context' };
  const ref = stageRef(ctx.plan, from);
  let img;
  let identity: string;
  if (ref.kind === 'stage') {
    const st = await stageInput(set.run.stages, ref.index).load();
    img = st.img;
    identity = `stage:${st.key}`;
  } else {
    const r = await ctx.opts.images.resolve(from, { platform: set.run.platform, ...(ctx.opts.signal ? { signal: ctx.opts.signal } : {}) });
    ctx.layers.add(r.layers);
    img = { config: r.config.value, layers: r.manifest.value.layers };
    identity = `image:${r.descriptor.digest}`;
  }
  await materialize(ctx, img);
  const sm = await ctx.opts.snapshotter.mount(mountLowers(img.config.rootfs.diff_ids));
  set.held.push(sm);
  return { root: sm.root, identity };
}

async function tmpfsMount(set: MountSet, m: Mount<'tmpfs'>): Promise<void> {
  await note(set, m.target);
  set.mounts.push({ destination: m.target, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', ...(m.size ? [`size=${m.size}`] : [])] });
}

/** A cache mount; a new cache is seeded from `from`/`source` (a stage, image or the context), as BuildKit does. */
async function cacheMount(set: MountSet, m: Mount<'cache'>): Promise<void> {
  const src = m.from !== undefined || m.source !== undefined ? await mountSource(set, m.from) : undefined;
  const seed = src ? await secureJoin(src.root, m.source ?? '/') : undefined;
  const perms = { ...(m.uid !== undefined ? { uid: m.uid } : {}), ...(m.gid !== undefined ? { gid: m.gid } : {}), ...(m.mode !== undefined ? { mode: m.mode } : {}) };
  const key = cacheMountKey(m.id ?? m.target, { ...perms, ...(src ? { from: src.identity } : {}), ...(m.source !== undefined ? { source: m.source } : {}) });
  const c = await set.ctx.cacheMounts.acquire(key, { sharing: m.sharing, ...perms, ...(seed ? { seed } : {}) });
  set.cleanup.push(() => c.release());
  await note(set, m.target);
  set.mounts.push({ destination: m.target, type: 'bind', source: c.source, options: ['rbind', m.readonly ? 'ro' : 'rw'] });
}

async function bindMount(set: MountSet, m: Mount<'bind'>): Promise<void> {
  const { ctx } = set;
  let source = await secureJoin((await mountSource(set, m.from)).root, m.source ?? '/');
  const fromContext = m.from === undefined;
  if (m.readwrite || (fromContext && ctx.contextFilter)) {
    // writes to a rw bind mount are discarded, and the context is seen through
    // .dockerignore: give the step its own copy
    const scratch = await makeTempDir(ctx.tmpDir, 'bind-');
    set.cleanup.push(() => fsp.rm(scratch, { recursive: true, force: true }));
    const items = await collectSources(fromContext ? ctx.opts.contextDir : path.dirname(source), [fromContext ? (m.source ?? '.') : path.basename(source)], {
      ...(fromContext && ctx.contextFilter ? { filter: ctx.contextFilter } : {}),
      allowEmptyWildcard: false,
    });
    const isDir = items.length === 1 && items[0]!.stat.isDirectory();
    await copyInto(scratch, items, { dest: '/', preserveOwner: !fromContext, createdTime: Math.floor(Date.now() / 1000) });
    source = isDir ? scratch : path.join(scratch, items[0]!.name);
  }
  await note(set, m.target);
  set.mounts.push({ destination: m.target, type: 'bind', source, options: ['rbind', m.readwrite ? 'rw' : 'ro'] });
}

async function secretMount(set: MountSet, m: Mount<'secret'>): Promise<void> {
  const { ctx, run } = set;
  const secret = ctx.opts.secrets?.find((s) => s.id === m.id);
  if (!secret) {
    if (m.required) throw new BuildError('SECRET_NOT_FOUND', `secret "${m.id}" is required but was not given; pass it with --secret id=${m.id},src=FILE`);
    return;
  }
  if (m.env) set.env.push(`${m.env}=${secret.data.toString()}`);
  if (!m.target && m.env) return;
  const target = m.target ?? `/run/secrets/${m.id}`;
  const dir = await makeTempDir(await ctx.sandbox.dir(), 'secret-');
  const file = path.join(dir, 'secret');
  await fsp.writeFile(file, secret.data, { mode: m.mode ?? 0o400 });
  await setOwner(file, m.uid ?? run.user.uid, m.gid ?? run.user.gid);
  set.cleanup.push(() => fsp.rm(dir, { recursive: true, force: true }));
  await note(set, target);
  set.mounts.push({ destination: target, type: 'bind', source: file, options: ['rbind', 'ro'] });
}

async function sshMount(set: MountSet, m: Mount<'ssh'>): Promise<void> {
  const agent = set.ctx.opts.ssh?.find((a) => a.id === (m.id || 'default'));
  if (!agent) {
    if (m.required) throw new BuildError('SECRET_NOT_FOUND', `RUN --mount=type=ssh${m.id && m.id !== 'default' ? `,id=${m.id}` : ''} needs an SSH agent: pass --ssh ${m.id || 'default'}[=SOCKET]`);
    return;
  }
  const target = m.target ?? '/run/buildkit/ssh_agent.0';
  await note(set, target);
  set.mounts.push({ destination: target, type: 'bind', source: agent.socket, options: ['rbind'] });
  set.env.push(`SSH_AUTH_SOCK=${target}`);
}

async function addMount(set: MountSet, m: RunMount): Promise<void> {
  switch (m.type) {
    case 'tmpfs':
      return tmpfsMount(set, m);
    case 'cache':
      return cacheMount(set, m);
    case 'bind':
      return bindMount(set, m);
    case 'secret':
      return secretMount(set, m);
    case 'ssh':
      return sshMount(set, m);
  }
}

/**
 * Turn `RUN --mount=…` into sandbox mounts. Mount points that the runtime has to create in
 * the root are removed again afterwards, so they never end up in the layer.
 */
export async function prepareRunMounts(ctx: BuildSession, run: RunMountsArgs): Promise<PreparedMounts> {
  const set: MountSet = { ctx, run, mounts: [], env: [], cleanup: [], created: [], held: [], lstat: lstatOnce() };
  await noteSandboxTargets(set);
  for (const m of run.ins.mounts) await addMount(set, m);
  return {
    mounts: set.mounts,
    env: set.env,
    cleanup: set.cleanup,
    release: async () => {
      for (const c of set.created.reverse()) {
        if (!(await removeEmptyChain(c))) continue;
        if (c.parentMtime) await fsp.utimes(path.dirname(c.abs), c.parentMtime, c.parentMtime).catch(() => undefined);
      }
      for (const c of set.cleanup) await c();
      for (const h of set.held) await h.release();
    },
  };
}

/** Remove a mount point the runtime created, and its created parents, only while they are empty. */
async function removeEmptyChain(c: CreatedPath): Promise<boolean> {
  let cur = c.target;
  for (;;) {
    const st = await fsp.lstat(cur).catch(() => undefined);
    if (st) {
      if (st.isDirectory()) {
        if ((await fsp.readdir(cur)).length > 0) return false;
        await fsp.rmdir(cur);
      } else if (st.isFile() && st.size === 0) {
        await fsp.rm(cur);
      } else {
        return false;
      }
    }
    if (cur === c.abs || cur.length <= c.abs.length) return true;
    cur = path.dirname(cur);
  }
}
