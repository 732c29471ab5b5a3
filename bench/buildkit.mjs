// BuildKit as the build benchmark's reference (issue 16): Debian's docker.io, its dockerd started
// here with everything private under one temp dir (data root, exec root, pidfile, unix socket,
// client config), no iptables and no bridge, the loopback registry as insecure registry and
// mirror; builds with DOCKER_BUILDKIT=1; stopped and removed afterwards.
import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { sh } from './lib.mjs';

const DOCKERD = '/usr/sbin/dockerd';
// Debian's client, matching the daemon (another `docker` may come first on PATH)
const DOCKER = '/usr/bin/docker';

export function buildkitAvailable() {
  return existsSync(DOCKERD) && existsSync(DOCKER);
}

async function waitForSocket(client, child, ms) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`dockerd exited ${child.exitCode}`);
    if ((await client(['version'], { allowFail: true })).code === 0) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('dockerd did not answer within 60 s');
}

/** Start a private dockerd; returns build and stop. `registry` is host:port on loopback. */
export async function startBuildkit(dir, registry) {
  const sock = path.join(dir, 'docker.sock');
  await fsp.mkdir(path.join(dir, 'config'), { recursive: true });
  await fsp.writeFile(path.join(dir, 'daemon.json'), '{}\n');
  const log = await fsp.open(path.join(dir, 'dockerd.log'), 'w');
  // its own mount namespace: its overlay mounts are invisible to (and safe from) the host's
  const child = spawn('unshare', ['--mount', '--propagation', 'private', DOCKERD,
    '--config-file', path.join(dir, 'daemon.json'),
    '--data-root', path.join(dir, 'data'),
    '--exec-root', path.join(dir, 'exec'),
    '--pidfile', path.join(dir, 'docker.pid'),
    '--host', `unix://${sock}`,
    '--iptables=false', '--ip-masq=false', '--ip-forward=false', '--bridge=none',
    '--insecure-registry', registry,
    '--registry-mirror', `http://${registry}`,
    '--storage-driver', 'overlay2',
    '--log-level', 'warn',
  ], { stdio: ['ignore', log.fd, log.fd] });
  const env = { ...process.env, DOCKER_BUILDKIT: '1', DOCKER_CONFIG: path.join(dir, 'config'), DOCKER_HOST: `unix://${sock}` };
  const client = (args, opts = {}) => sh(DOCKER, args, { env, ...opts });
  try {
    await waitForSocket(client, child, 60000);
  } catch (e) {
    child.kill('SIGKILL');
    const text = await fsp.readFile(path.join(dir, 'dockerd.log'), 'utf8').catch(() => '');
    throw new Error(`${e.message}\n${text.slice(-2000)}`);
  }
  return {
    // --bridge=none leaves RUN no default network: each RUN gets its own empty namespace
    build: (ctx, tag) => client(['build', '-q', '--network', 'none', '-t', tag, ctx]),
    async stop() {
      const exited = new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20000);
      await exited;
      clearTimeout(timer);
      await log.close();
      // overlay mounts under the data root go with the daemon; anything left is unmounted first
      await sh('bash', ['-c', `grep -o " ${dir}[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l`], { allowFail: true });
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
}
