/** The SBOM scanners on hand-made package databases and hand-made (also hostile) layers. */
import { encodeHeader, type TarHeader } from '@hoist/snapshotter';
import {
  collectFiles,
  parseApkInstalled,
  parseDpkgStatus,
  parseMetadata,
  parseOsRelease,
  parsePackageJson,
  parsePackageLock,
  scanFiles,
  spdxDocument,
  isInstalledPackageJson,
  wantedFile,
} from '@hoist/exporter';

const DPKG = `Package: base-files
Status: install ok installed
Priority: required
Architecture: amd64
Version: 12.4+deb12u5
Description: Debian base system miscellaneous files
 This package contains the basic filesystem hierarchy.
 .
 More text.

Package: removed-one
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u4

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2024a-0+deb12u1
`;

describe('dpkg status', () => {
  it('lists installed packages only, with version, arch and a deb purl (the version percent-encoded)', () => {
    const pkgs = parseDpkgStatus(DPKG, { foundIn: 'var/lib/dpkg/status', distro: { id: 'debian', versionId: '12' } });
    expect(pkgs.map((p) => `${p.name} ${p.version} ${p.arch}`)).toEqual(['base-files 12.4+deb12u5 amd64', 'libc6 2.36-9+deb12u4 amd64', 'tzdata 2024a-0+deb12u1 all']);
    expect(pkgs[0]!.purl).toBe('pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64&distro=debian-12');
  });

  it('an epoch in the version is encoded (1:2.3 → 1%3A2.3); without os-release the namespace is debian', () => {
    const [p] = parseDpkgStatus('Package: x\nStatus: install ok installed\nVersion: 1:2.3-1\nArchitecture: arm64\n', { foundIn: 'var/lib/dpkg/status' });
    expect(p!.purl).toBe('pkg:deb/debian/x@1%3A2.3-1?arch=arm64');
  });
});

describe('apk installed', () => {
  it('reads P/V/A/L of each block', () => {
    const text = 'C:Q1abc=\nP:musl\nV:1.2.4_git20230717-r4\nA:x86_64\nL:MIT\nF:lib\nR:ld-musl-x86_64.so.1\n\nC:Q1def=\nP:busybox\nV:1.36.1-r15\nA:x86_64\nL:GPL-2.0-only\n';
    const pkgs = parseApkInstalled(text, { foundIn: 'lib/apk/db/installed', distro: { id: 'alpine', versionId: '3.19.1' } });
    expect(pkgs.map((p) => [p.name, p.version, p.license])).toEqual([['musl', '1.2.4_git20230717-r4', 'MIT'], ['busybox', '1.36.1-r15', 'GPL-2.0-only']]);
    expect(pkgs[1]!.purl).toBe('pkg:apk/alpine/busybox@1.36.1-r15?arch=x86_64&distro=alpine-3.19.1');
  });
});

describe('npm', () => {
  it('package-lock v3: every package entry except the project itself and links; scoped names keep their scope', () => {
    const lock = JSON.stringify({
      name: 'app', version: '1.0.0', lockfileVersion: 3,
      packages: {
        '': { name: 'app', version: '1.0.0' },
        'node_modules/left-pad': { version: '1.3.0', license: 'WTFPL' },
        'node_modules/@babel/core': { version: '7.24.0' },
        'node_modules/a/node_modules/b': { version: '2.0.0' },
        'node_modules/linked': { resolved: 'packages/linked', link: true },
      },
    });
    const pkgs = parsePackageLock(lock, 'app/package-lock.json');
    expect(pkgs.map((p) => `${p.name}@${p.version}`)).toEqual(['left-pad@1.3.0', '@babel/core@7.24.0', 'b@2.0.0']);
    expect(pkgs[1]!.purl).toBe('pkg:npm/%40babel/core@7.24.0');
  });

  it('package-lock v1 (nested dependencies) and a package.json; broken JSON gives nothing', () => {
    const v1 = JSON.stringify({ lockfileVersion: 1, dependencies: { a: { version: '1.0.0', dependencies: { b: { version: '0.1.0' } } } } });
    expect(parsePackageLock(v1, 'package-lock.json').map((p) => p.purl)).toEqual(['pkg:npm/a@1.0.0', 'pkg:npm/b@0.1.0']);
    expect(parsePackageJson('{"name":"ms","version":"2.1.3","license":"MIT"}', 'x')).toMatchObject({ name: 'ms', version: '2.1.3', license: 'MIT' });
    expect(parsePackageJson('{"name":"ms"}', 'x')).toBeUndefined();
    expect(parsePackageLock('{nope', 'x')).toEqual([]);
  });

  it('installed package.json paths: node_modules/NAME and node_modules/@scope/NAME only', () => {
    expect(isInstalledPackageJson('usr/lib/node_modules/npm/package.json')).toBe(true);
    expect(isInstalledPackageJson('app/node_modules/@types/node/package.json')).toBe(true);
    expect(isInstalledPackageJson('app/node_modules/npm/lib/package.json')).toBe(false);
    expect(isInstalledPackageJson('app/package.json')).toBe(false);
  });
});

describe('python METADATA', () => {
  it('Name/Version/License from the headers, not the description; the purl name normalised', () => {
    const text = 'Metadata-Version: 2.1\nName: Flask_Cors\nVersion: 4.0.1\nLicense: MIT\nSummary: x\n\nName: not-this\nVersion: 9\n';
    expect(parseMetadata(text, 'usr/lib/python3/dist-packages/Flask_Cors-4.0.1.dist-info/METADATA')).toMatchObject({ name: 'Flask_Cors', version: '4.0.1', license: 'MIT', purl: 'pkg:pypi/flask-cors@4.0.1' });
    expect(parseMetadata('Name: x\n', 'y')).toBeUndefined();
  });
});

describe('os-release', () => {
  it('ID and VERSION_ID, quoted or not', () => {
    expect(parseOsRelease('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_ID="12"\nID=debian\n')).toEqual({ id: 'debian', versionId: '12' });
    expect(parseOsRelease('NAME=x\n')).toBeUndefined();
  });
});

/** A tar of hand-made members (no `..` check on our side: readers must cope). */
function tar(members: Array<Partial<TarHeader> & { name: string; body?: string }>): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    const body = Buffer.from(m.body ?? '');
    const type = m.type ?? 'file';
    parts.push(encodeHeader({ mode: 0o644, uid: 0, gid: 0, mtime: 0, ...m, type, size: type === 'file' ? body.length : 0 }));
    if (type === 'file') {
      parts.push(body);
      if (body.length % 512) parts.push(Buffer.alloc(512 - (body.length % 512)));
    }
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

async function* layers(...tars: Buffer[]): AsyncGenerator<AsyncIterable<Buffer>> {
  for (const t of tars) {
    yield (async function* () {
      // in small chunks, as a stream gives them
      for (let i = 0; i < t.length; i += 700) yield t.subarray(i, i + 700);
    })();
  }
}

describe('collectFiles (layers in order)', () => {
  const status = (names: string[]): string => names.map((n) => `Package: ${n}\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n`).join('\n');

  it('an upper layer replaces the dpkg status; a whiteout removes a package.json; an opaque dir hides lower files but not its own', async () => {
    const l1 = tar([
      { name: 'var/lib/dpkg/status', body: status(['a']) },
      { name: 'app/node_modules/x/package.json', body: '{"name":"x","version":"1.0.0"}' },
      { name: 'srv/node_modules/y/package.json', body: '{"name":"y","version":"1.0.0"}' },
      { name: 'etc/passwd', body: 'root:x:0:0::/root:/bin/sh\n' },
    ]);
    const l2 = tar([
      { name: 'var/lib/dpkg/status', body: status(['a', 'b']) },
      { name: 'app/node_modules/x/.wh.package.json' },
      { name: 'srv/node_modules/z/package.json', body: '{"name":"z","version":"2.0.0"}' },
      { name: 'srv/.wh..wh..opq' },
    ]);
    const c = await collectFiles(layers(l1, l2));
    expect([...c.files.keys()].sort()).toEqual(['srv/node_modules/z/package.json', 'var/lib/dpkg/status']);
    expect(scanFiles(c.files).map((p) => `${p.kind}:${p.name}`)).toEqual(['npm:z', 'deb:a', 'deb:b']);
  });

  it('hostile members: `..` names and symlinks are never followed, oversized files are skipped, not read', async () => {
    const l1 = tar([
      { name: '../../var/lib/dpkg/status', body: status(['evil']) },
      { name: 'var/lib/dpkg/status', type: 'symlink', linkname: '/etc/shadow' },
      { name: 'usr/lib/python3/x.dist-info/METADATA', body: `Name: big\nVersion: 1\n${'x'.repeat(5000)}` },
      { name: 'usr/lib/python3/ok.dist-info/METADATA', body: 'Name: ok\nVersion: 2\n' },
    ]);
    const c = await collectFiles(layers(l1), { maxFileBytes: 1000 });
    expect([...c.files.keys()]).toEqual(['usr/lib/python3/ok.dist-info/METADATA']);
    expect(c.skipped).toEqual(['usr/lib/python3/x.dist-info/METADATA']);
  });

  it('a total cap: files past it are skipped', async () => {
    const members = Array.from({ length: 5 }, (_, i) => ({ name: `n/node_modules/p${i}/package.json`, body: `{"name":"p${i}","version":"1.0.0"}` }));
    const c = await collectFiles(layers(tar(members)), { maxTotalBytes: 90 });
    expect(c.files.size).toBe(2);
    expect(c.skipped).toHaveLength(3);
  });

  it('wants only database paths', () => {
    expect(wantedFile('var/lib/dpkg/status')).toBe('database');
    expect(wantedFile('var/lib/dpkg/status-old')).toBeUndefined();
    expect(wantedFile('var/lib/dpkg/status.d/base')).toBe('small');
    expect(wantedFile('app/package-lock.json')).toBe('small');
    expect(wantedFile('app/node_modules/x/package-lock.json')).toBeUndefined();
  });
});

describe('SPDX 2.3 document', () => {
  it('one package per find with its purl, DESCRIBES relationships, unique valid SPDXIDs', () => {
    const pkgs = parseDpkgStatus(DPKG, { foundIn: 'var/lib/dpkg/status' });
    const doc = spdxDocument(pkgs, { name: 'app', namespace: 'https://hoist.invalid/spdx/abc', created: new Date(0), toolVersion: '0.1.0' }) as {
      spdxVersion: string; dataLicense: string; SPDXID: string; creationInfo: { created: string; creators: string[] };
      packages: Array<{ SPDXID: string; name: string; versionInfo: string; externalRefs: Array<{ referenceType: string; referenceLocator: string }> }>;
      relationships: Array<{ relatedSpdxElement: string; relationshipType: string }>;
    };
    expect([doc.spdxVersion, doc.dataLicense, doc.SPDXID]).toEqual(['SPDX-2.3', 'CC0-1.0', 'SPDXRef-DOCUMENT']);
    expect(doc.creationInfo).toEqual({ creators: ['Tool: hoist-0.1.0'], created: '1970-01-01T00:00:00Z' });
    expect(doc.packages.map((p) => `${p.name} ${p.versionInfo}`)).toEqual(['base-files 12.4+deb12u5', 'libc6 2.36-9+deb12u4', 'tzdata 2024a-0+deb12u1']);
    expect(doc.packages[1]!.externalRefs).toEqual([{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: 'pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64' }]);
    for (const p of doc.packages) expect(p.SPDXID).toMatch(/^SPDXRef-[A-Za-z0-9.-]+$/);
    expect(new Set(doc.packages.map((p) => p.SPDXID)).size).toBe(3);
    expect(doc.relationships.map((r) => r.relatedSpdxElement)).toEqual(doc.packages.map((p) => p.SPDXID));
  });
});
