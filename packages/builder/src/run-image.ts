import * as path from 'node:path';
import type { ImageConfig, ImageStore, Platform } from '@hoist/oci';
import type { Snapshotter } from '@hoist/snapshotter';
import { BuildError } from './errors.js';
import { DEFAULT_PATH, envGet } from './config-ops.js';
import { resolveUser } from './rootfs.js';
import { detectRuntime, runInSandbox } from './sandbox/runtime.js';
import { SandboxSession } from './sandbox/session.js';
import { promises as fsp } from 'node:fs';
import { mountLowers } from './materialize.js';
import { effectiveDefaultNetwork, openNetwork, runNetwork, sandboxResolvConf, tunUsable, type DefaultNetwork, type RunNetwork } from './sandbox/network.js';
import { currentUserNamespace } from '@hoist/oci';
import type { SeccompSetting } from './sandbox/seccomp.js';
import type { SandboxOptions } from './sandbox/spec.js';
import { emulationFor } from './sandbox/emulation.js';
import { configPlatform } from './platforms.js';
import type { Executor } from './executor.js';

export interface RunImageOptions {
  store: ImageStore;
  snapshotter: Snapshotter;
  root: string;
  ref: string;
  /** Replaces the image's CMD when non-empty. */
  command?: string[];
  entrypoint?: string[];
  env?: string[];
  user?: string;
  workdir?: string;
  /** `default` (also when unset): its own network namespace with outbound access, as RUN. */
  network?: DefaultNetwork;
  seccomp?: SeccompSetting;
  runtime?: string;
  platform?: Platform;
  stdout?: (d: Buffer) => void;
  stderr?: (d: Buffer) => void;
  inheritStdio?: boolean;
  /**
   * Run through this executor instead of the OCI runtime: the no-privilege mode's proot
   * (the host's network, no seccomp of ours, no stdin). Default: runc (root or rootless).
   */
  executor?: Executor;
  signal?: AbortSignal;
}

/**
 * Start an image's command in the build sandbox on a throw-away writable layer (as
 * `buildah run` does): nothing it writes is kept.
 */
export async function runImage(o: RunImageOptions): Promise<number> {
  const desc = await o.store.resolve(o.ref);
  if (!desc) throw new BuildError('BASE_IMAGE_NOT_FOUND', `image ${o.ref} is not in the store ${o.root}; build, pull or import it first`);
  const img = await o.store.load(desc, o.platform);
  const cfg = img.config.value;
  const c = cfg.config ?? {};
  for (let i = 0; i < img.manifest.value.layers.length; i++) {
    await o.snapshotter.ensureLayer({ diffId: cfg.rootfs.diff_ids[i]!, descriptor: img.manifest.value.layers[i]! });
  }
  const entrypoint = o.entrypoint ?? c.Entrypoint ?? [];
  const cmd = o.command && o.command.length > 0 ? o.command : (c.Cmd ?? []);
  const args = [...entrypoint, ...cmd];
  if (args.length === 0) throw new BuildError('UNSUPPORTED', `image ${o.ref} has no CMD or ENTRYPOINT; give a command: hoist run ${o.ref} sh`);
  if (o.executor) refuseWithoutNamespaces(o);
  const rt = o.executor ? undefined : detectRuntime(o.runtime);
  const m = await o.snapshotter.mount(mountLowers(cfg.rootfs.diff_ids));
  const tmp = path.join(o.root, 'tmp', `run-${process.pid}`);
  const fallback = o.executor ? { network: 'host' as const } : effectiveDefaultNetwork(o.network, { rootless: currentUserNamespace() !== undefined, tunUsable: () => tunUsable() });
  if ('warning' in fallback && fallback.warning) (o.stderr ?? ((d: Buffer) => process.stderr.write(d)))(Buffer.from(`hoist: warning: ${fallback.warning}\n`));
  const network = runNetwork('default', fallback.network);
  let net: RunNetwork | undefined;
  const session = new SandboxSession(o.root);
  try {
    await fsp.mkdir(tmp, { recursive: true });
    const hosts = path.join(tmp, 'hosts');
    await fsp.writeFile(hosts, '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n');
    let resolvConf = '/etc/resolv.conf';
    if (network === 'sandbox') {
      resolvConf = path.join(tmp, 'resolv.conf');
      await fsp.writeFile(resolvConf, sandboxResolvConf(await fsp.readFile('/etc/resolv.conf', 'utf8').catch(() => '')));
    }
    const user = await resolveUser(m.root, o.user ?? c.User ?? '');
    const env = [...(c.Env ?? []), ...(o.env ?? [])];
    if (envGet(env, 'PATH') === undefined) env.unshift(`PATH=${DEFAULT_PATH}`);
    if (envGet(env, 'HOME') === undefined) env.push(`HOME=${user.home}`);
    net = await openNetwork(network, o.signal ? { signal: o.signal } : {});
    const sb: SandboxOptions = {
      rootfs: m.root,
      hostname: 'hoist',
      network: net.spec,
      hostsFile: hosts,
      resolvConf,
      ...(o.seccomp ? { seccomp: o.seccomp } : {}),
      ...emulationOf(cfg),
      process: { args, env, cwd: o.workdir ?? (c.WorkingDir || '/'), uid: user.uid, gid: user.gid, additionalGids: user.additionalGids },
    };
    const io = { bundleParent: await session.bundles(), ...(o.stdout ? { stdout: o.stdout } : {}), ...(o.stderr ? { stderr: o.stderr } : {}), ...(o.signal ? { signal: o.signal } : {}) };
    const res = o.executor
      ? // owners: the command sees the image's owners; no warnings about recording them (nothing is kept)
        await o.executor.run(sb, { ...io, ...(m.owners ? { owners: m.owners } : {}) })
      : await runInSandbox(rt!, sb, { ...io, stateDir: path.join(o.root, 'runtime', rt!.name), ...(o.inheritStdio ? { inheritStdio: true } : {}) });
    return res.exitCode;
  } finally {
    await net?.close();
    await session.close();
    await m.release();
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}

/** What an executor without namespaces (proot) cannot give `hoist run`: said before anything starts. */
function refuseWithoutNamespaces(o: RunImageOptions): void {
  const name = o.executor!.name();
  if (o.network === 'none') throw new BuildError('ISOLATION_UNSUPPORTED', `--network none needs a network namespace, which ${name} (no privileges) cannot create; run without it, or where user namespaces or root are allowed`);
  if (o.seccomp) throw new BuildError('ISOLATION_UNSUPPORTED', `--security-opt seccomp=… needs the OCI runtime; under ${name} (no privileges) the command runs with proot's own filter`);
}

/** A foreign-architecture image runs emulated, as its RUN steps would (sandbox/emulation.ts). */
function emulationOf(cfg: ImageConfig): Pick<SandboxOptions, 'emulation'> {
  const emu = emulationFor(configPlatform(cfg));
  return emu.kind === 'private-binfmt' ? { emulation: { emulator: emu.emulator, target: emu.target, register: emu.register, helper: emu.helper } } : {};
}
