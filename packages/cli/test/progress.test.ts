/**
 * Progress displays: the live tty view (run in a real terminal under tmux) shows every step
 * and ends with a summary; --progress=json prints one parseable event per line covering every step.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { HOIST_BIN, hoist, run, startRegistry, storeWithBusybox, tempDir } from '@hoist/testkit';

const DOCKERFILE = 'FROM busybox\nRUN echo one\nRUN for i in 1 2 3; do echo line $i; sleep 0.2; done\nCOPY a.txt /a.txt\nCMD ["sh"]\n';

describe('progress output', () => {
  let root: string;
  let ctx: string;
  beforeAll(async () => {
    [root, ctx] = await Promise.all([storeWithBusybox(), tempDir('progress')]);
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), DOCKERFILE);
    await fsp.writeFile(path.join(ctx, 'a.txt'), 'a\n');
  });
  afterAll(async () => {
    await fsp.rm(root, { recursive: true, force: true });
    await fsp.rm(ctx, { recursive: true, force: true });
  });

  it('--progress=json: one event per line, every step started and finished', async () => {
    const r = await hoist(['build', '--root', root, '--progress', 'json', '--no-cache', '-t', 'p:json', ctx]);
    expect(r.code).toBe(0);
    const events = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as { type: string; id?: string; status?: string; label?: string });
    const steps = events.filter((e) => e.type === 'step');
    const ids = [...new Set(steps.map((e) => e.id))];
    expect(ids).toHaveLength(3); // two RUNs and the COPY
    for (const id of ids) {
      expect(steps.some((e) => e.id === id && e.status === 'start')).toBe(true);
      expect(steps.some((e) => e.id === id && e.status === 'done')).toBe(true);
    }
    expect(events.some((e) => e.type === 'log')).toBe(true);
  });

  it('--progress=tty under tmux shows every step and a summary', async () => {
    const session = `hoist-progress-${process.pid}`;
    const log = path.join(ctx, 'tty.out');
    const cmd = `NO_COLOR=1 ${process.execPath} ${HOIST_BIN} build --root ${root} --progress tty --no-cache -t p:tty ${ctx}; echo EXIT=$? > ${log}; sleep 60`;
    const start = await run('tmux', ['new-session', '-d', '-s', session, '-x', '160', '-y', '50', cmd]);
    expect(start.code).toBe(0);
    let screen = '';
    try {
      for (let i = 0; i < 600 && !(await fsp.readFile(log, 'utf8').catch(() => '')); i++) await new Promise((r) => setTimeout(r, 100));
      // the pane stays open (sleep) so the final frame can be read
      screen = (await run('tmux', ['capture-pane', '-p', '-t', session])).stdout;
    } finally {
      await run('tmux', ['kill-session', '-t', session]);
    }
    expect(await fsp.readFile(log, 'utf8')).toBe('EXIT=0\n');
    expect(screen).toMatch(/RUN echo one/);
    expect(screen).toMatch(/RUN for i in 1 2 3/);
    expect(screen).toMatch(/COPY a\.txt \/a\.txt/);
    expect(screen).toMatch(/built in [\d.]+s \(3 steps, 0 cached\)/);
  });

  it('--progress=tty with --push: the summary, tagged and pushed lines and the digest stay on screen', async () => {
    const registry = await startRegistry();
    const session = `hoist-progress-push-${process.pid}`;
    const log = path.join(ctx, 'tty-push.out');
    const ref = `${registry.host}/p/tty:1`;
    const cmd = `NO_COLOR=1 ${process.execPath} ${HOIST_BIN} build --root ${root} --progress tty --no-cache -t ${ref} --push ${ctx}; echo EXIT=$? > ${log}; sleep 60`;
    let screen = '';
    try {
      const start = await run('tmux', ['new-session', '-d', '-s', session, '-x', '200', '-y', '50', cmd]);
      expect(start.code).toBe(0);
      for (let i = 0; i < 600 && !(await fsp.readFile(log, 'utf8').catch(() => '')); i++) await new Promise((r) => setTimeout(r, 100));
      screen = (await run('tmux', ['capture-pane', '-p', '-t', session])).stdout;
    } finally {
      await run('tmux', ['kill-session', '-t', session]);
      await registry.stop();
    }
    expect(await fsp.readFile(log, 'utf8')).toBe('EXIT=0\n');
    expect(screen).toMatch(/built in [\d.]+s \(3 steps, 0 cached\)/);
    expect(screen).toContain(`tagged ${ref}`);
    expect(screen).toContain(`pushed ${ref}`);
    // the manifest digest (stdout) is the last line the command wrote
    expect(screen).toMatch(/^sha256:[0-9a-f]{64}$/m);
    const lines = screen.split('\n');
    expect(lines.findIndex((l) => l.startsWith(`pushed ${ref}`))).toBeLessThan(lines.findIndex((l) => /^sha256:/.test(l)));
  });
});
