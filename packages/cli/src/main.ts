#!/usr/bin/env node
import { Command, CommanderError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { ExitError } from './errors.js';
import { guardPipes } from './pipes.js';
import type { ProgressMode } from './progress.js';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

function program(signal: AbortSignal): Command {
  const p = new Command('hoist')
    .description('Build OCI images from Dockerfiles without a daemon')
    .option('--root <dir>', 'store directory (default $HOIST_ROOT, $XDG_DATA_HOME/hoist or ~/.local/share/hoist)')
    .option('-v, --version', 'print the version (as `hoist version`)')
    .showHelpAfterError('(run with --help for usage)')
    .enablePositionalOptions()
    .exitOverride();
  const root = (): string | undefined => p.opts().root as string | undefined;
  // registry TLS settings of every command that talks to registries (applied before its action)
  const withRegistryFlags = (c: Command): Command =>
    c
      .option('--tls-ca <file>', "trust this CA certificate (PEM) for registries, besides the system's and /etc/docker/certs.d (repeatable; also $HOIST_TLS_CA)", collect, [])
      .option('--insecure-registry <host>', 'allow plain HTTP or an unverified certificate for this registry host[:port] (repeatable; also $HOIST_INSECURE_REGISTRIES)', collect, [])
      .hook('preAction', async (_t, action) => {
        const { applyRegistryFlags } = await import('./registry-flags.js');
        applyRegistryFlags(action.opts() as { tlsCa?: string[]; insecureRegistry?: string[] });
      });
  const progressOpt = (): Option => new Option('--progress <mode>', 'progress output').choices(['auto', 'plain', 'tty', 'json', 'quiet']).default('auto');

  withRegistryFlags(p.command('build'))
    .description('Build an image from a Dockerfile')
    .argument('<context>', 'build context: a directory, a tarball, - (stdin: a tar archive or a bare Dockerfile), a git URL (https://host/repo.git#ref:subdir) or an http(s) URL of a tarball or a Dockerfile')
    .option('-t, --tag <name>', 'name and optionally a tag (repeatable)', collect, [])
    .option('-f, --file <path>', 'Dockerfile (default CONTEXT/Dockerfile; - for stdin)')
    .option('--build-arg <k=v>', 'build-time variable (repeatable)', collect, [])
    .option('--target <stage>', 'build this stage')
    .option('--push', 'push every tag after the build')
    .option('--no-cache', 'do not use the build cache')
    .option('--no-cache-filter <stage>', 'do not use the cache for this stage (repeatable)', collect, [])
    .addOption(progressOpt())
    .option('--platform <os/arch>', 'target platform')
    .option('--network <mode>', 'network for RUN: default (own namespace, outbound only, no host loopback), host or none')
    .option('--allow <entitlement>', 'allow RUN --network=host (network.host) or RUN --security=insecure (security.insecure) (repeatable)', collect, [])
    .option('--security-opt <opt>', 'seccomp profile of RUN: seccomp=unconfined or seccomp=PATH (Docker format)', collect, [])
    .addOption(new Option('--format <format>', 'image format').choices(['oci', 'docker']).default('oci'))
    .option('--jobs <n>', 'stages built at the same time (default: number of CPUs)')
    .option('--secret <spec>', 'secret for RUN --mount=type=secret: id=ID,src=FILE or id=ID,env=VAR (repeatable)', collect, [])
    .option('--ssh <spec>', 'SSH agent for RUN --mount=type=ssh: default ($SSH_AUTH_SOCK) or ID=SOCKET (repeatable)', collect, [])
    .option('--memory <size>', 'memory limit of each RUN step (e.g. 512m, 2g)')
    .option('--cpus <n>', 'CPU limit of each RUN step (e.g. 1.5)')
    .option('--pids-limit <n>', 'process limit of each RUN step')
    .option('--explain-cache', 'for each step that misses the cache, say which input changed')
    .option('--runtime <name>', 'OCI runtime (runc or crun; default: the first that works)')
    .option('--isolation <mode>', 'how RUN is isolated: auto (default), oci (runc as root), rootless (runc in a user namespace), proot (no privileges: locked-down pods); also $HOIST_ISOLATION')
    .option('--registry-mirror <host>', 'pull docker.io images through this mirror first (repeatable)', collect, [])
    .option('--cache-from <spec>', 'import build cache: type=registry,ref=REF or type=local,src=DIR (repeatable; the first that has a step wins)', collect, [])
    .option('--cache-to <spec>', 'export build cache: type=registry,ref=REF[,mode=min|max][,ttl=DURATION][,max-entries=N][,cache-mounts=true] or type=local,dest=DIR[,…] (repeatable)', collect, [])
    .option('-o, --output <spec>', 'also write the result: type=oci|docker|tar,dest=FILE|- or type=oci|local,dest=DIR, type=registry (= --push), type=image (default) (repeatable)', collect, [])
    .option('--attest <spec>', 'attestation: type=provenance[,mode=min|max] or type=sbom (buildx syntax; repeatable)', collect, [])
    .option('--provenance <value>', 'shorthand for --attest=type=provenance: true, false or mode=min|max[,builder-id=…][,version=v1] (default mode=min on pushes and OCI layouts)')
    .option('--sbom <value>', 'shorthand for --attest=type=sbom: true or false: an SPDX SBOM listing the dpkg, apk, npm and Python packages of the image')
    .option('--load', 'load the image into Docker (DOCKER_HOST or /var/run/docker.sock) as docker load does')
    .option('--pull', 'always pull base images')
    .option('-q, --quiet', 'print only the image ID (the config digest, as docker buildx build -q)')
    .option('--label <k=v>', 'set a label on the image config (repeatable)', collect, [])
    .option('--annotation <[type:]k=v>', 'annotate the image: [TYPE[os/arch]:]KEY=VALUE, TYPE manifest (default) or manifest-descriptor (repeatable)', collect, [])
    .option('--add-host <host:ip>', 'add an /etc/hosts entry for RUN (ip may be host-gateway; repeatable)', collect, [])
    .option('--shm-size <size>', 'size of /dev/shm in RUN (e.g. 128m; default 64m)')
    .option('--ulimit <name=soft[:hard]>', 'resource limit of RUN, e.g. nofile=1024:2048, nproc=512 (repeatable)', collect, [])
    .option('--build-context <name=value>', 'named context for FROM/COPY --from/RUN --mount from=: NAME=DIR, docker-image://REF, oci-layout://PATH[:TAG], a git URL or an http(s) URL of one file (repeatable; overrides a stage of that name)', collect, [])
    .option('--iidfile <file>', 'write the image ID (config digest) to FILE')
    .option('--metadata-file <file>', 'write build result metadata (buildx keys: containerimage.digest, …) as JSON to FILE')
    .option('--call <fn>', 'what to do: build (default) or check (BuildKit\'s build checks only; check,format=json for JSON)')
    .option('--check', 'shorthand for --call=check')
    .option('--root <dir>', 'store directory')
    .addHelpText('after', '\nExamples:\n  hoist build -t app:1 .\n  hoist build --check .                    (lint: exit 1 on a failed check with # check=error=true)\n  hoist build -f docker/Dockerfile --build-arg VERSION=2 -t localhost:5000/app:2 --push .\n  hoist build --cache-from type=registry,ref=reg.example/app:cache --cache-to type=registry,ref=reg.example/app:cache,mode=max -t app .\n  hoist build -o type=docker,dest=app.tar -t app:1 .       (docker load -i app.tar)\n  hoist build -o type=local,dest=rootfs/ .\n')
    .action(async (context: string, o: Record<string, unknown>) => {
      const { buildCommand } = await import('./commands/build.js');
      // commander turns --no-cache into cache=false
      const flags = { ...o, noCache: o.cache === false, noCacheFilter: (o.cacheFilter as string[] | undefined) ?? [], root: (o.root as string | undefined) ?? root() } as never;
      process.exitCode = await buildCommand(context, flags, signal);
    });

  p.command('import')
    .description('Make a one-layer image from a root filesystem directory or tarball (like docker import)')
    .argument('<source>', 'directory or tarball')
    .argument('<ref>', 'image name[:tag]')
    .option('-m, --message <text>', 'history comment')
    .option('--platform <os/arch>', 'platform written into the config (default: this host\'s)')
    .addHelpText('after', '\nExamples:\n  hoist import ./rootfs base:1\n  hoist import rootfs.tar.gz debian:bookworm\n  hoist import --platform linux/arm64 ./rootfs-arm64 base:1-arm64\n')
    .option('--root <dir>', 'store directory')
    .action(async (source: string, ref: string, o: { message?: string; root?: string; platform?: string }) => {
      const { importCommand } = await import('./commands/images.js');
      process.exitCode = await importCommand(source, ref, o.root ?? root(), o);
    });

  p.command('run')
    .description('Run a command in an image, in the build sandbox (changes are discarded)')
    .argument('<ref>', 'image')
    .argument('[command...]', 'command (default: the image CMD)')
    .passThroughOptions()
    .option('-e, --env <k=v>', 'environment variable (repeatable)', collect, [])
    .option('-u, --user <user>', 'user[:group]')
    .option('-w, --workdir <dir>', 'working directory')
    .option('--entrypoint <cmd>', 'override the ENTRYPOINT ("" clears it)')
    .option('--network <mode>', 'default (own namespace, outbound only, no host loopback), host or none', 'default')
    .option('--security-opt <opt>', 'seccomp=unconfined or seccomp=PATH (Docker format)', collect, [])
    .option('--runtime <name>', 'OCI runtime')
    .option('--platform <os/arch>', 'of a multi-platform image, run this platform\'s (emulated when foreign)')
    .option('--isolation <mode>', 'auto (default), oci, rootless or proot (no privileges: the host network, no stdin); also $HOIST_ISOLATION')
    .option('--root <dir>', 'store directory')
    .addHelpText('after', '\nExamples:\n  hoist run hello\n  hoist run busybox sh -c "echo hi"\n  hoist run --platform linux/arm64 app:1 uname -m\n')
    .action(async (ref: string, cmd: string[], o: { env: string[]; user?: string; workdir?: string; network?: string; runtime?: string; entrypoint?: string; securityOpt: string[]; root?: string; platform?: string; isolation?: string }) => {
      const { runCommand } = await import('./commands/images.js');
      process.exitCode = await runCommand(ref, cmd, o.root ?? root(), o, signal);
    });

  withRegistryFlags(p.command('push'))
    .description('Push an image to a registry')
    .argument('<ref>', 'image in the store')
    .argument('[dest]', 'destination reference (default: REF)')
    .addHelpText('after', '\nExamples:\n  hoist push app:1 localhost:5000/team/app:1\n  hoist push localhost:5000/team/app:1\n')
    .addOption(progressOpt())
    .option('--root <dir>', 'store directory')
    .action(async (ref: string, dest: string | undefined, o: { progress: ProgressMode; root?: string }) => {
      const { pushCommand } = await import('./commands/images.js');
      process.exitCode = await pushCommand(ref, dest, o.root ?? root(), o.progress, signal);
    });

  p.command('manifest')
    .description('Image indexes in a registry')
    .addHelpText('after', '\nExamples:\n  hoist manifest create -t reg.example/app:1 reg.example/app@sha256:aaa… reg.example/app@sha256:bbb…\n')
    .command('create')
    .description('Merge images already pushed (one per platform) into an image index, without pulling layers (buildx imagetools create)')
    .argument('<source...>', 'REPO@sha256:… or REPO:TAG, in the target repository')
    .requiredOption('-t, --tag <ref>', 'the index to write (REGISTRY/REPO:TAG)')
    .option('--dry-run', 'print the index instead of pushing it')
    .addHelpText('after', '\nExamples:\n  hoist manifest create -t reg.example/app:1 reg.example/app@sha256:aaa… reg.example/app@sha256:bbb…\n')
    .action(async (sources: string[], o: { tag: string; dryRun?: boolean }) => {
      const { manifestCreateCommand } = await import('./commands/manifest.js');
      process.exitCode = await manifestCreateCommand(sources, o, signal);
    });

  withRegistryFlags(p.command('pull'))
    .description('Pull an image from a registry into the store')
    .argument('<ref>', 'image reference')
    .option('--platform <os/arch>', 'platform to pull from a multi-platform image')
    .addHelpText('after', '\nExamples:\n  hoist pull alpine\n  hoist pull --platform linux/arm64 ghcr.io/org/tool:2\n')
    .addOption(progressOpt())
    .option('--root <dir>', 'store directory')
    .action(async (ref: string, o: { progress: ProgressMode; platform?: string; root?: string }) => {
      const { pullCommand } = await import('./commands/images.js');
      process.exitCode = await pullCommand(ref, o.root ?? root(), o.progress, o.platform, signal);
    });

  p.command('images')
    .description('List images in the store')
    .option('--json', 'machine-readable output')
    .addHelpText('after', '\nExamples:\n  hoist images\n  hoist images --json | jq -r .[].ref\n')
    .option('--root <dir>', 'store directory')
    .action(async (o: { json?: boolean; root?: string }) => {
      const { imagesCommand } = await import('./commands/images.js');
      process.exitCode = await imagesCommand(o.root ?? root(), !!o.json);
    });

  p.command('inspect')
    .description('Print the manifest and config of an image')
    .addHelpText('after', '\nExamples:\n  hoist inspect app:1\n  hoist inspect app:1 | jq .config.config.Env\n')
    .argument('<ref>', 'image (name or the ID `hoist images` prints)')
    .option('-f, --format <template>', 'Go template, as docker inspect: {{.Config.Env}}, {{json .Config.Labels}}, {{index .Config.Labels "k"}}, {{.Id}}')
    .option('--root <dir>', 'store directory')
    .option('--platform <os/arch>', 'of a multi-platform image, this platform\'s manifest (default: this host\'s)')
    .action(async (ref: string, o: { root?: string; format?: string; platform?: string }) => {
      const { inspectCommand } = await import('./commands/images.js');
      process.exitCode = await inspectCommand(ref, o.root ?? root(), o.format, o.platform ? { platform: o.platform } : {});
    });

  p.command('tag')
    .description('Give an image another name')
    .addHelpText('after', '\nExamples:\n  hoist tag app:1 localhost:5000/app:1\n')
    .argument('<source>')
    .argument('<target>')
    .option('--root <dir>', 'store directory')
    .action(async (src: string, dest: string, o: { root?: string }) => {
      const { tagCommand } = await import('./commands/images.js');
      process.exitCode = await tagCommand(src, dest, o.root ?? root());
    });

  p.command('rm')
    .description('Remove image names from the store (blobs go with `hoist prune`)')
    .addHelpText('after', '\nExamples:\n  hoist rm app:1 app:2\n')
    .argument('<refs...>')
    .option('--root <dir>', 'store directory')
    .action(async (refs: string[], o: { root?: string }) => {
      const { rmCommand } = await import('./commands/images.js');
      process.exitCode = await rmCommand(refs, o.root ?? root());
    });

  p.command('save')
    .description('Write images to a docker-archive (default) or an OCI layout tar, for docker load, skopeo or hoist load')
    .argument('<refs...>', 'images in the store')
    .option('-o, --output <file>', 'archive file (default: stdout)')
    .addOption(new Option('--format <format>', 'archive format').choices(['docker', 'oci']).default('docker'))
    .option('--platform <os/arch>', 'platform to save from a multi-platform image')
    .option('--root <dir>', 'store directory')
    .addHelpText('after', '\nExamples:\n  hoist save app:1 -o app.tar            (docker load -i app.tar; skopeo copy docker-archive:app.tar ...)\n  hoist save --format oci app:1 app:2 -o images.tar   (skopeo copy oci-archive:images.tar:docker.io/library/app:1 ...)\n  hoist save app:1 | ssh host docker load\n')
    .action(async (refs: string[], o: { output?: string; format: string; platform?: string; root?: string }) => {
      const { saveCommand } = await import('./commands/save.js');
      process.exitCode = await saveCommand(refs, { ...o, root: o.root ?? root() }, signal);
    });

  p.command('load')
    .description('Load images from a docker-archive or an OCI layout tar (detected; plain or gzip), verifying every blob')
    .option('-i, --input <file>', 'archive file (default: stdin)')
    .option('-q, --quiet', 'print only the image digests')
    .option('--root <dir>', 'store directory')
    .addHelpText('after', '\nExamples:\n  hoist load -i app.tar\n  docker save app:1 | hoist load\n  skopeo copy docker://alpine oci-archive:alpine.tar:alpine && hoist load -i alpine.tar\n')
    .action(async (o: { input?: string; quiet?: boolean; root?: string }) => {
      const { loadCommand } = await import('./commands/load.js');
      process.exitCode = await loadCommand({ ...o, root: o.root ?? root() }, signal);
    });

  p.command('prune')
    .description('Delete blobs, snapshots and temp files no tagged image or kept build cache record uses')
    .option('-a, --all', 'also delete every build cache record and cache mount')
    .option('--keep-storage <size>', 'delete build cache records, oldest first, until blobs + snapshots take less than SIZE (500MB, 2GiB)')
    .option('-f, --force', 'do not ask for confirmation')
    .option('--dry-run', 'only report what would be deleted')
    .option('--json', 'machine-readable report')
    .option('--root <dir>', 'store directory')
    .addHelpText('after', '\nExamples:\n  hoist prune -f\n  hoist prune -f --keep-storage 10GB\n  hoist prune --all -f          (also the whole build cache)\n  hoist prune --dry-run\n')
    .action(async (o: { all?: boolean; keepStorage?: string; force?: boolean; dryRun?: boolean; json?: boolean; root?: string }) => {
      const { pruneCommand } = await import('./commands/prune.js');
      process.exitCode = await pruneCommand({ ...o, root: o.root ?? root() }, signal);
    });

  p.command('fsck')
    .description('Check the store: every image blob read and verified, no stray temp files, cache records sound; exit 1 on problems')
    .option('--json', 'machine-readable report')
    .option('--root <dir>', 'store directory')
    .addHelpText('after', '\nExamples:\n  hoist fsck\n  hoist fsck --json | jq .issues\n')
    .action(async (o: { json?: boolean; root?: string }) => {
      const { fsckCommand } = await import('./commands/fsck.js');
      process.exitCode = await fsckCommand({ ...o, root: o.root ?? root() }, signal);
    });

  p.command('du')
    .description('Show disk usage of the store by category: images, build cache, snapshots, cache mounts, temp')
    .option('--json', 'machine-readable output')
    .option('--root <dir>', 'store directory')
    .addHelpText('after', '\nExamples:\n  hoist du\n  hoist du --json | jq .total\n')
    .action(async (o: { json?: boolean; root?: string }) => {
      const { duCommand } = await import('./commands/du.js');
      process.exitCode = await duCommand({ ...o, root: o.root ?? root() });
    });

  const cache = p
    .command('cache')
    .description('Inspect and prune exported build caches (in a registry or a local directory)')
    .addHelpText('after', '\nExamples:\n  hoist cache du --registry reg.example/app:cache\n  hoist cache prune --registry reg.example/app:cache --older-than 14d\n');
  cache
    .command('du')
    .description('Show a build cache: entries, bytes, last use, and orphans a prune would reclaim')
    .option('--registry <ref>', 'the cache artifact in a registry (as given to --cache-to type=registry,ref=REF)')
    .option('--local <dir>', 'a cache directory (as given to --cache-to type=local,dest=DIR)')
    .option('--json', 'machine-readable output')
    .addHelpText('after', '\nExamples:\n  hoist cache du --registry reg.example/app:cache\n  hoist cache du --local /ci/cache --json\n')
    .action(async (o: { registry?: string; local?: string; json?: boolean }) => {
      const { cacheDuCommand } = await import('./commands/cache.js');
      process.exitCode = await cacheDuCommand(o, signal);
    });
  cache
    .command('prune')
    .description('Drop old entries of a build cache and delete what nothing references any more (replaced artifacts, their blobs)')
    .option('--registry <ref>', 'the cache artifact in a registry; deletes through the registry API (needs deletes enabled there)')
    .option('--local <dir>', 'a cache directory')
    .option('--older-than <duration>', 'drop entries no build used for this long (168h, 7d, 1h30m)')
    .option('--keep <n>', 'keep only the N most recently used entries')
    .option('--json', 'machine-readable report')
    .addHelpText('after', '\nExamples:\n  hoist cache prune --registry reg.example/app:cache\n  hoist cache prune --registry reg.example/app:cache --older-than 14d\n  hoist cache prune --local /ci/cache --keep 200\n')
    .action(async (o: { registry?: string; local?: string; olderThan?: string; keep?: string; json?: boolean }) => {
      const { cachePruneCommand } = await import('./commands/cache.js');
      process.exitCode = await cachePruneCommand(o, signal);
    });

  p.command('plan')
    .description('Show the build graph of a Dockerfile without building')
    .argument('[context]', 'build context', '.')
    .option('-f, --file <path>', 'Dockerfile')
    .option('--build-arg <k=v>', 'build-time variable (repeatable)', collect, [])
    .option('--target <stage>', 'target stage')
    .option('--platform <os/arch>', 'target platform')
    .addOption(new Option('--format <format>', 'output format').choices(['json', 'dot', 'text']).default('text'))
    .addHelpText('after', '\nExamples:\n  hoist plan --format json .\n  hoist plan --format dot . | dot -Tsvg > plan.svg\n')
    .action(async (context: string, o: { file?: string; buildArg: string[]; target?: string; platform?: string; format: 'json' | 'dot' | 'text' }) => {
      const { planCommand } = await import('./commands/plan.js');
      process.exitCode = await planCommand(context, o);
    });

  p.command('login')
    .description('Log in to a registry (password from stdin with --password-stdin)')
    .argument('<registry>')
    .option('-u, --username <user>', 'user name')
    .option('-p, --password <password>', 'password (prefer --password-stdin)')
    .option('--password-stdin', 'read the password from stdin')
    .addHelpText('after', '\nExamples:\n  echo "$TOKEN" | hoist login ghcr.io -u me --password-stdin\n')
    .action(async (registry: string, o: { username?: string; password?: string; passwordStdin?: boolean }) => {
      const { loginCommand } = await import('./commands/login.js');
      process.exitCode = await loginCommand(registry, o);
    });

  p.command('logout')
    .description('Remove stored credentials for a registry')
    .addHelpText('after', '\nExamples:\n  hoist logout ghcr.io\n')
    .argument('<registry>')
    .action(async (registry: string) => {
      const { logoutCommand } = await import('./commands/login.js');
      process.exitCode = await logoutCommand(registry);
    });

  p.command('version')
    .description('Print the version')
    .addHelpText('after', '\nExamples:\n  hoist version\n')
    .action(() => {
      const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
      process.stdout.write(`hoist ${pkg.version}\n`);
    });
  return p;
}

/** `hoist --version` / `hoist -v` is `hoist version` (as docker --version). */
function versionAlias(argv: string[]): string[] {
  const rest = argv.slice(2);
  return rest.length === 1 && (rest[0] === '--version' || rest[0] === '-v') ? [...argv.slice(0, 2), 'version'] : argv;
}

/** Not root: run the command in a user namespace (rootless.ts). Undefined: run it here. */
async function rootless(): Promise<number | undefined> {
  if ((process.geteuid?.() ?? 0) === 0) return undefined;
  try {
    const { reexecRootless } = await import('./rootless.js');
    return await reexecRootless(process.argv.slice(2), (s) => process.stderr.write(s));
  } catch (e) {
    return reportLazily(e);
  }
}

/** report.js imports every package, which a rootless parent process never needs: loaded on errors only. */
async function reportLazily(e: unknown): Promise<number> {
  const { reportError } = await import('./report.js');
  return reportError(e, (s) => process.stderr.write(s));
}

/**
 * Ctrl-C / SIGTERM / SIGHUP abort the command, which stops its sandboxes and unmounts what it
 * mounted; the exit code is then 128 + the signal's number (130, 143, 129) as in a shell.
 * Further signals never cut that cleanup short: they are noted once and the cleanup goes on
 * (a rootless child gets SIGHUP once per exiting thread of a dead parent).
 */
function onSignals(ac: AbortController): () => NodeJS.Signals | undefined {
  let received: NodeJS.Signals | undefined;
  let noted = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (received) {
      if (!noted) process.stderr.write(`hoist: ${sig}: still cleaning up, please wait...\n`);
      noted = true;
      return;
    }
    received = sig;
    process.stderr.write(`\nhoist: ${sig}: stopping (cleaning up sandboxes and mounts)...\n`);
    ac.abort();
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);
  return () => received;
}

async function main(): Promise<void> {
  const code = await rootless();
  // the same teardown window as after a signal (see below): the parent of a rootless child
  // keeps ignoring Ctrl-C until it has exited with the child's status
  if (code !== undefined) process.exit(code);
  const ac = new AbortController();
  const received = onSignals(ac);
  // a reader that went away (| head) cancels the command; nothing more is reported
  const pipes = guardPipes(() => ac.abort());
  try {
    await program(ac.signal).parseAsync(versionAlias(process.argv));
  } catch (e) {
    if (pipes.exitCode !== undefined) process.exitCode = pipes.exitCode;
    else if (e instanceof CommanderError) process.exitCode = e.exitCode === 0 ? 0 : 2;
    else if (e instanceof ExitError) process.exitCode = e.exitCode;
    else process.exitCode = await reportLazily(e);
  }
  const sig = received();
  if (pipes.exitCode !== undefined) process.exitCode = pipes.exitCode;
  else if (sig) process.exitCode = 128 + (osConstants.signals[sig] ?? 0);
  // After a signal, exit now rather than by an emptied event loop: Node's teardown closes the
  // signal handlers (restoring SIGINT's default action) before the process ends, so one more
  // Ctrl-C in that window would kill hoist by the signal instead of exiting 128+n. Writes to
  // stdout/stderr are synchronous on Linux (files, pipes, TTYs): nothing is lost.
  if (sig) process.exit();
}

// no top-level await: the bundle is CommonJS (scripts/bundle.mjs); main() reports its own errors
void main();
