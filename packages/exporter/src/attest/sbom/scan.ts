/** Every package the scanners find in an image's collected files, deduplicated by purl and path. */
import { APK_INSTALLED, parseApkInstalled } from './apk.js';
import { DPKG_STATUS, DPKG_STATUS_DIR, parseDpkgStatus } from './dpkg.js';
import { isInstalledPackageJson, parsePackageJson, parsePackageLock } from './npm.js';
import { isDistInfoMetadata, parseMetadata } from './python.js';
import type { Distro, FoundPackage } from './types.js';

/** `/etc/os-release` (or `/usr/lib/os-release`): `ID` and `VERSION_ID`. */
export function parseOsRelease(text: string): Distro | undefined {
  const vals = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) vals.set(m[1]!, m[2]!.replace(/^(["'])(.*)\1$/, '$2'));
  }
  const id = vals.get('ID');
  if (!id) return undefined;
  const versionId = vals.get('VERSION_ID');
  return { id, ...(versionId ? { versionId } : {}) };
}

function scanOne(p: string, text: string, distro: Distro | undefined): FoundPackage[] {
  const o = { foundIn: p, ...(distro ? { distro } : {}) };
  if (p === DPKG_STATUS || p.startsWith(DPKG_STATUS_DIR)) return parseDpkgStatus(text, o);
  if (p === APK_INSTALLED) return parseApkInstalled(text, o);
  if (isInstalledPackageJson(p)) return [parsePackageJson(text, p)].filter((x): x is FoundPackage => !!x);
  if (p.endsWith('package-lock.json')) return parsePackageLock(text, p);
  if (isDistInfoMetadata(p)) return [parseMetadata(text, p)].filter((x): x is FoundPackage => !!x);
  return [];
}

export function scanFiles(files: ReadonlyMap<string, Buffer>): FoundPackage[] {
  const rel = files.get('etc/os-release') ?? files.get('usr/lib/os-release');
  const distro = rel ? parseOsRelease(rel.toString('utf8')) : undefined;
  const seen = new Set<string>();
  const out: FoundPackage[] = [];
  for (const p of [...files.keys()].sort()) {
    for (const pkg of scanOne(p, files.get(p)!.toString('utf8'), distro)) {
      // an installed package.json and the lockfile may both list a package: once per purl
      if (seen.has(pkg.purl)) continue;
      seen.add(pkg.purl);
      out.push(pkg);
    }
  }
  return out;
}

