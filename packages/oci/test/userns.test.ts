import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { currentUserNamespace, idCount, idMapped, isInitialIdMap, parseIdMap } from '@hoist/oci';

describe('user namespace id maps', () => {
  it('parses /proc/<pid>/uid_map lines', () => {
    const text = '         0       1001          1\n         1     100000      65536\n';
    expect(parseIdMap(text)).toEqual([
      { inside: 0, outside: 1001, count: 1 },
      { inside: 1, outside: 100000, count: 65536 },
    ]);
    expect(parseIdMap('')).toEqual([]);
  });

  it('tells the initial namespace from a user namespace', () => {
    expect(isInitialIdMap(parseIdMap('0 0 4294967295\n'))).toBe(true);
    expect(isInitialIdMap(parseIdMap('0 1001 1\n'))).toBe(false);
  });

  it('knows which ids a namespace maps and how many', () => {
    const m = parseIdMap('0 1001 1\n1 100000 65536\n');
    expect(idMapped(m, 0)).toBe(true);
    expect(idMapped(m, 42)).toBe(true);
    expect(idMapped(m, 65536)).toBe(true);
    expect(idMapped(m, 65537)).toBe(false);
    expect(idCount(m)).toBe(65537);
    expect(idMapped(parseIdMap('0 1001 1\n'), 5)).toBe(false);
  });

  it('reads the maps of a process directory; the initial namespace gives undefined', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hoist-userns-'));
    try {
      await fsp.writeFile(path.join(dir, 'uid_map'), '0 1001 1\n');
      await fsp.writeFile(path.join(dir, 'gid_map'), '0 1001 1\n');
      expect(currentUserNamespace(dir)).toEqual({ uids: [{ inside: 0, outside: 1001, count: 1 }], gids: [{ inside: 0, outside: 1001, count: 1 }] });
      await fsp.writeFile(path.join(dir, 'uid_map'), '0 0 4294967295\n');
      await fsp.writeFile(path.join(dir, 'gid_map'), '0 0 4294967295\n');
      expect(currentUserNamespace(dir)).toBeUndefined();
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});
