/**
 * readDockerfile reads the Dockerfile and both ignore-file candidates at once (issue 16); the
 * answer is Docker's: `<Dockerfile>.dockerignore` wins over the context's `.dockerignore`.
 */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readDockerfile } from '../src/library/dockerfile.js';

let dir: string;
beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hoist-dfread-'));
});
afterEach(async () => fsp.rm(dir, { recursive: true, force: true }));

it('the Dockerfile\'s own ignore file wins; else the context\'s; else none', async () => {
  await fsp.writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\n');
  expect(await readDockerfile(dir)).toEqual({ path: path.relative(process.cwd(), path.join(dir, 'Dockerfile')), text: 'FROM scratch\n' });
  await fsp.writeFile(path.join(dir, '.dockerignore'), 'shared\n');
  expect((await readDockerfile(dir)).dockerignore).toBe('shared\n');
  await fsp.writeFile(path.join(dir, 'Dockerfile.dockerignore'), 'own\n');
  expect((await readDockerfile(dir)).dockerignore).toBe('own\n');
  // an empty own file still wins (it ignores nothing)
  await fsp.writeFile(path.join(dir, 'Dockerfile.dockerignore'), '');
  expect((await readDockerfile(dir)).dockerignore).toBe('');
});

it('a missing Dockerfile is a usage error naming it, whatever the ignore files say', async () => {
  await fsp.writeFile(path.join(dir, '.dockerignore'), 'x\n');
  await expect(readDockerfile(dir)).rejects.toMatchObject({ message: expect.stringContaining(`cannot read Dockerfile ${path.join(dir, 'Dockerfile')}`) });
});
