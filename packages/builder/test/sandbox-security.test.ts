/**
 * RUN's isolation, end to end on the real runtime: entitlements (`--allow`), the default seccomp
 * profile (and `--security-opt`), and the default network (its own namespace: outbound access,
 * the host's loopback out of reach).
 */
import { promises as fsp } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { hoist, tempDir } from '@hoist/testkit';
import { startBaseEnv, type BaseEnv } from './helpers/env.js';
import { build, withStatus, writeContext, type BuildRun } from './helpers/builds.js';
import { startOtherHost, type OtherHost } from './helpers/other-host.js';

let base: BaseEnv;
let work: string;
let busybox: string;
let other: OtherHost;
/** A server on the host's 127.0.0.1, as the test registry or a developer's database would be. */
let loopback: { host: string; requests: string[]; server: http.Server };

beforeAll(async () => {
  [base, work, other] = await Promise.all([startBaseEnv(), tempDir('builder-security'), startOtherHost()]);
  busybox = base.refs.busybox!;
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    res.end('host-loopback\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  loopback = { host: `127.0.0.1:${(server.address() as AddressInfo).port}`, requests, server };
}, 120_000);

afterAll(async () => {
  loopback?.server.closeAllConnections();
  await new Promise((resolve) => loopback?.server.close(resolve));
  await other?.stop();
  await base?.stop();
  if (work) await fsp.rm(work, { recursive: true, force: true });
});

let n = 0;
/** Build `dockerfile` (FROM busybox is prepended) and export the result's files. */
async function buildFiles(dockerfile: string[], args: string[] = [], store = path.join(work, `store-${++n}`)): Promise<BuildRun & { file(p: string): Promise<string> }> {
  const ctx = await writeContext(path.join(work, `ctx-${++n}`), { Dockerfile: [`FROM ${busybox}`, ...dockerfile, ''].join('\n') });
  const out = path.join(work, `out-${n}`);
  const r = await build(store, ctx, [...args, '-o', `type=local,dest=${out}`]);
  return { ...r, file: (p: string) => fsp.readFile(path.join(out, p), 'utf8') };
}

/** What a failed build printed, minus the step's own output: no stack traces for user mistakes. */
function expectCleanError(r: BuildRun): void {
  expect(r.code).toBe(1);
  expect(r.stderr).not.toMatch(/\n\s+at .+:\d+:\d+\)?\n/);
  expect(r.stderr).not.toContain('internal error');
}

describe('entitlements', () => {
  it('RUN --security=insecure fails without --allow security.insecure, at its line, before anything runs', async () => {
    const r = await buildFiles(['RUN echo ran > /ran.txt', 'RUN --security=insecure grep Seccomp: /proc/self/status > /seccomp.txt']);
    expectCleanError(r);
    expect(r.stderr).toContain('Dockerfile:3');
    expect(r.stderr).toContain('RUN --security=insecure needs the security.insecure entitlement');
    expect(r.stderr).toContain('--allow security.insecure');
    expect(withStatus(r, 'DONE')).toEqual([]);
  });

  it('with --allow security.insecure the RUN has every capability and no seccomp filter', async () => {
    const r = await buildFiles(['RUN --security=insecure grep -E "^(Seccomp|CapEff):" /proc/self/status > /status.txt'], ['--allow', 'security.insecure']);
    expect(r.stderr).not.toContain('ERROR');
    expect(r.code).toBe(0);
    const status = await r.file('status.txt');
    expect(status).toMatch(/^Seccomp:\s+0$/m);
    const capEff = BigInt(`0x${/^CapEff:\s+([0-9a-f]+)$/m.exec(status)![1]}`);
    const CAP_SYS_ADMIN = 21n;
    expect((capEff >> CAP_SYS_ADMIN) & 1n).toBe(1n);
  });

  it('RUN --network=host needs --allow network.host (or --network host) and then reaches the host loopback', async () => {
    const df = [`RUN --network=host wget -q -O /loopback.txt http://${loopback.host}/allowed`];
    const refused = await buildFiles(df);
    expectCleanError(refused);
    expect(refused.stderr).toContain('Dockerfile:2');
    expect(refused.stderr).toContain('--allow network.host');
    expect(loopback.requests).not.toContain('/allowed');
    const allowed = await buildFiles(df, ['--allow', 'network.host']);
    expect(allowed.code).toBe(0);
    expect(await allowed.file('loopback.txt')).toBe('host-loopback\n');
    const hostDefault = await buildFiles([`RUN wget -q -O /loopback.txt http://${loopback.host}/host-default`], ['--network', 'host']);
    expect(hostDefault.code).toBe(0);
    expect(loopback.requests.filter((u) => u === '/allowed' || u === '/host-default')).toEqual(['/allowed', '/host-default']);
  });
});

describe('default seccomp profile', () => {
  it('every RUN has seccomp mode 2 and may not create a user namespace (EPERM)', async () => {
    const r = await buildFiles(['RUN grep Seccomp: /proc/self/status > /seccomp.txt; unshare -U -r true 2> /unshare.txt; echo $? >> /unshare.txt']);
    expect(r.code).toBe(0);
    expect(await r.file('seccomp.txt')).toMatch(/^Seccomp:\s+2$/m);
    const unshare = (await r.file('unshare.txt')).trim().split('\n');
    expect(unshare[0]).toContain('Operation not permitted');
    expect(unshare.at(-1)).not.toBe('0');
  });

  it('--security-opt seccomp=unconfined turns it off; seccomp=PATH applies a profile in Docker format', async () => {
    const unconfined = await buildFiles(['RUN grep Seccomp: /proc/self/status > /seccomp.txt'], ['--security-opt', 'seccomp=unconfined']);
    expect(unconfined.code).toBe(0);
    expect(await unconfined.file('seccomp.txt')).toMatch(/^Seccomp:\s+0$/m);
    const profile = path.join(work, 'no-mkdir.json');
    await fsp.writeFile(profile, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' }] }));
    const custom = await buildFiles(['RUN mkdir /made 2> /mkdir.txt; echo $? >> /mkdir.txt; touch /touched'], ['--security-opt', `seccomp=${profile}`]);
    expect(custom.code).toBe(0);
    expect(await custom.file('mkdir.txt')).toMatch(/Operation not permitted\n1\n$/);
    expect(await custom.file('touched')).toBe('');
  });

  it('a bad --security-opt is a usage error naming the option', async () => {
    const ctx = await writeContext(path.join(work, 'ctx-badopt'), { Dockerfile: `FROM ${busybox}\nRUN true\n` });
    const r = await build(path.join(work, 'store-badopt'), ctx, ['--security-opt', 'apparmor=unconfined']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--security-opt "apparmor=unconfined": only seccomp=unconfined or seccomp=PATH');
  });
});

describe('default network', () => {
  it("reaches a non-loopback address of the host, not the host's 127.0.0.1 (nor through slirp's gateway)", async () => {
    const r = await buildFiles([
      `RUN wget -q -O /other.txt http://${other.host}/from-run`,
      `RUN for a in 127.0.0.1 10.0.2.2; do wget -q -O /dev/null http://$a:${loopback.host.split(':')[1]}/from-sandbox && echo "$a reached" || echo "$a unreachable"; done > /loopback.txt`,
      'RUN ls /sys/class/net > /ifaces.txt && grep nameserver /etc/resolv.conf > /dns.txt',
    ]);
    expect(r.stderr).not.toContain('ERROR');
    expect(r.code).toBe(0);
    expect(await r.file('other.txt')).toBe('other-host\n');
    expect(other.requests).toContain('/from-run');
    expect(await r.file('loopback.txt')).toBe('127.0.0.1 unreachable\n10.0.2.2 unreachable\n');
    expect(loopback.requests).not.toContain('/from-sandbox');
    expect((await r.file('ifaces.txt')).split('\n').filter(Boolean)).toEqual(['lo', 'tap0']);
    expect(await r.file('dns.txt')).toBe('nameserver 10.0.2.3\n');
  });

  it('has a stable cache key: a rebuild is cached, --network host is another key', async () => {
    const store = path.join(work, 'store-key');
    const df = ['RUN echo one > /one.txt'];
    const first = await buildFiles(df, [], store);
    expect(withStatus(first, 'DONE')).toEqual(['RUN echo one > /one.txt']);
    const again = await buildFiles(df, [], store);
    expect(withStatus(again, 'CACHED')).toEqual(['RUN echo one > /one.txt']);
    const host = await buildFiles(df, ['--network', 'host'], store);
    expect(withStatus(host, 'DONE')).toEqual(['RUN echo one > /one.txt']);
  });

  it('hoist run gets the same sandbox: seccomp mode 2, no host loopback', async () => {
    const store = path.join(work, 'store-run');
    const built = await buildFiles(['RUN true'], ['-t', 'sandboxed:1'], store);
    expect(built.code).toBe(0);
    const r = await hoist(['run', '--root', store, 'sandboxed:1', 'sh', '-c', `grep Seccomp: /proc/self/status; wget -q -O - http://${loopback.host}/from-hoist-run || echo unreachable; wget -q -O - http://${other.host}/from-hoist-run`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Seccomp:\s+2\nunreachable\nother-host\n$/);
    expect(loopback.requests).not.toContain('/from-hoist-run');
  });
});
