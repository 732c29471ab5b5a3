// The temp dir of an unpacked context: named by pid, and what a killed hoist left is removed.
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { tempDir } from '@hoist/testkit';
import { contextTempDir } from '../src/build-context.js';

test("a context dir carries this process's pid; one of a dead process goes, a live one's and other names stay", async () => {
  const tmp = await tempDir('context-tmp-');
  const dead = spawnSync('true').pid!; // a pid that has exited
  const left = path.join(tmp, `hoist-context-${dead}-AbC123`);
  await fsp.mkdir(path.join(left, 'sub'), { recursive: true });
  await fsp.writeFile(path.join(left, 'sub', 'Dockerfile'), 'FROM scratch\n');
  const live = path.join(tmp, `hoist-context-${process.pid}-XyZ789`);
  const older = path.join(tmp, 'hoist-context-123456'); // an older hoist's name (no pid): not ours to judge
  const outside = path.join(tmp, 'elsewhere');
  await Promise.all([live, older, outside].map((d) => fsp.mkdir(d)));
  // a link named like a dead process's dir goes as a link: what it points at stays
  const link = path.join(tmp, `hoist-context-${dead}-link00`);
  await fsp.symlink(outside, link);

  const made = await contextTempDir(tmp);

  expect(path.basename(made)).toMatch(new RegExp(`^hoist-context-${process.pid}-.{6}$`));
  expect((await fsp.readdir(tmp)).sort()).toEqual([path.basename(made), path.basename(live), 'elsewhere', 'hoist-context-123456'].sort());
  expect((await fsp.stat(outside)).isDirectory()).toBe(true);
});
