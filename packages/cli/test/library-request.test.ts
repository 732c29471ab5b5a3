/**
 * The library's BuildRequest carries the build wiring the command's newer flags need (issue 14
 * after the buildx/multi-platform/isolation merges): a platform list, `load`, `isolation`.
 * Mistakes are UsageErrors found before anything is built.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT, mountsUnder, tempDir } from '@hoist/testkit';
import { build } from '../src/library/build.js';
import { UsageError } from '../src/errors.js';

const HELLO = path.join(REPO_ROOT, 'fixtures', 'hello');

describe('build(): BuildRequest wiring', () => {
  let root: string;
  beforeAll(async () => {
    root = await tempDir('library-request');
  });
  afterAll(async () => {
    await fsp.rm(root, { recursive: true, force: true });
  });

  it('a platform list cannot go to a single-image output (type=tar)', async () => {
    const err = await build({ context: HELLO, root, platform: 'linux/amd64,linux/arm64', outputs: [`type=tar,dest=${path.join(root, 'x.tar')}`] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(/type=tar holds one image; a build for 2 platforms makes an index/);
  });

  it('load with several platforms is refused with buildx\'s message', async () => {
    const err = await build({ context: HELLO, root, platform: 'linux/amd64,linux/arm64', load: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(/^--load: docker exporter does not currently support exporting manifest lists \(a build for 2 platforms makes an index\)/);
  });

  it('an empty entry in the platform list names the fix', async () => {
    const err = await build({ context: HELLO, root, platform: 'linux/amd64,' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(/an empty platform in the list; write e\.g\. linux\/amd64,linux\/arm64/);
  });

  it('an unknown isolation mode is a usage error', async () => {
    const err = await build({ context: HELLO, root, isolation: 'chroot' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toBe('--isolation must be auto, oci, rootless or proot, not "chroot"');
  });

  it('a request refused once the store is open returns only after the new store\'s overlay probe ended (nothing left mounting)', async () => {
    const fresh = await tempDir('library-request-fresh');
    const err = await build({ context: HELLO, root: fresh, isolation: 'chroot' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    // the probe (a mount and an unmount in snapshots/tmp) finished before the error came back
    expect(JSON.parse(await fsp.readFile(path.join(fresh, 'snapshots', 'driver.json'), 'utf8'))).toHaveProperty('driver');
    expect(await fsp.readdir(path.join(fresh, 'snapshots', 'tmp'))).toEqual([]);
    expect(await mountsUnder(fresh)).toEqual([]);
  });
});
