/**
 * Store leases between processes: a child process holds a lease (the compiled @hoist/oci, as
 * the CLI uses it) and this process tries the other kinds. Asserted from markers on disk,
 * typed errors and the pids they name; the child is told when to let go (no timing).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { OciError, acquireStoreLease } from '@hoist/oci';

/** The compiled package (npm run build), as the CLI loads it. */
const OCI_DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'index.js');

/** A process holding a lease on `root` until it is told to release it (a line on stdin). */
async function holder(root: string, mode: 'shared' | 'exclusive'): Promise<ChildProcessWithoutNullStreams & { release(): Promise<void> }> {
  const code = `const { acquireStoreLease } = await import(${JSON.stringify(pathToFileURL(OCI_DIST).href)});
const lease = acquireStoreLease(${JSON.stringify(root)}, ${JSON.stringify(mode)});
process.stdout.write('held\\n');
process.stdin.once('data', () => { lease.release(); process.stdout.write('released\\n'); process.stdin.destroy(); });`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['pipe', 'pipe', 'pipe'] });
  const [first] = (await once(child.stdout, 'data')) as [Buffer];
  expect(first.toString()).toBe('held\n');
  return Object.assign(child, {
    release: async (): Promise<void> => {
      const exited = once(child, 'exit');
      child.stdin.write('go\n');
      await exited;
    },
  });
}

function lockedBy(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    if (e instanceof OciError) return { code: e.code, message: e.message };
    throw e;
  }
  return { code: 'none', message: '' };
}

describe('store leases', () => {
  let root: string;
  beforeEach(async () => {
    root = await fsp.mkdtemp(path.join(os.tmpdir(), 'hoist-lease-'));
  });
  afterEach(async () => fsp.rm(root, { recursive: true, force: true }));

  const markers = (): Promise<string[]> => fsp.readdir(path.join(root, 'active')).then((n) => n.sort());

  it('a lease is a marker named by kind and pid, gone on release', async () => {
    const lease = acquireStoreLease(root, 'shared');
    expect(await markers()).toEqual([`shared-${process.pid}`]);
    expect((await fsp.readFile(path.join(root, 'active', `shared-${process.pid}`), 'utf8')).trim()).toBe(String(process.pid));
    lease.release();
    expect(await markers()).toEqual([]);
  });

  it('shared leases of two processes coexist; prune (exclusive) is refused while one is held, and gets it after', async () => {
    const child = await holder(root, 'shared');
    const mine = acquireStoreLease(root, 'shared');
    expect(await markers()).toEqual([`shared-${child.pid}`, `shared-${process.pid}`].sort());
    mine.release();
    const refused = lockedBy(() => acquireStoreLease(root, 'exclusive'));
    expect(refused.code).toBe('STORE_LOCKED');
    expect(refused.message).toContain(`in use by process ${child.pid}`);
    // the refused side took its marker back
    expect(await markers()).toEqual([`shared-${child.pid}`]);
    await child.release();
    const x = acquireStoreLease(root, 'exclusive');
    expect(await markers()).toEqual([`exclusive-${process.pid}`]);
    x.release();
  });

  it('while another process prunes, neither a shared nor a second exclusive lease is granted', async () => {
    const child = await holder(root, 'exclusive');
    for (const mode of ['shared', 'exclusive'] as const) {
      const refused = lockedBy(() => acquireStoreLease(root, mode));
      expect({ mode, code: refused.code, names: refused.message.includes(`process ${child.pid}`) }).toEqual({ mode, code: 'STORE_LOCKED', names: true });
    }
    expect(await markers()).toEqual([`exclusive-${child.pid}`]);
    await child.release();
    acquireStoreLease(root, 'shared').release();
  });

  it('markers of processes that are gone do not block, and are cleared', async () => {
    await fsp.mkdir(path.join(root, 'active'), { recursive: true });
    await fsp.writeFile(path.join(root, 'active', 'shared-4194303'), '4194303\n');
    await fsp.writeFile(path.join(root, 'active', 'exclusive-4194302'), '4194302\n');
    const x = acquireStoreLease(root, 'exclusive');
    expect(await markers()).toEqual([`exclusive-${process.pid}`]);
    x.release();
    expect(await markers()).toEqual([]);
  });
});
