import type { SandboxOptions } from '@hoist/builder';

/** Sandbox options for tests that run a fake runtime (nothing is started in the root). */
export function fakeSandbox(env: string[] = []): SandboxOptions {
  return {
    rootfs: '/nonexistent',
    hostname: 'h',
    network: 'none',
    hostsFile: '/etc/hosts',
    resolvConf: '/etc/resolv.conf',
    process: { args: ['true'], env, cwd: '/', uid: 0, gid: 0 },
  };
}
