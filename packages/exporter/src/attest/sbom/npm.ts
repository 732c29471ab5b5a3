/**
 * npm packages: the `packages` (lockfile v2/v3) or `dependencies` (v1) of a `package-lock.json`,
 * and each `node_modules/**\/package.json` (what is really installed).
 */
import { purlEncode, type FoundPackage } from './types.js';

/** `pkg:npm/%40scope/name@1.0.0` (the scope is the namespace, its `@` encoded). */
export function npmPurl(name: string, version: string): string {
  const i = name.startsWith('@') ? name.indexOf('/') : -1;
  const path = i > 0 ? `${purlEncode(name.slice(0, i))}/${purlEncode(name.slice(i + 1))}` : purlEncode(name);
  return `pkg:npm/${path}@${purlEncode(version)}`;
}

function pkg(name: string, version: string, foundIn: string, license?: unknown): FoundPackage {
  return { kind: 'npm', name, version, purl: npmPurl(name, version), foundIn, ...(typeof license === 'string' && license ? { license } : {}) };
}

interface LockEntry {
  name?: string;
  version?: string;
  license?: unknown;
  link?: boolean;
  dependencies?: Record<string, LockEntry>;
}

/** The name of a lockfile v2/v3 key: what follows the last `node_modules/`. */
function lockKeyName(key: string): string | undefined {
  const i = key.lastIndexOf('node_modules/');
  return i < 0 ? undefined : key.slice(i + 'node_modules/'.length);
}

function fromV1(deps: Record<string, LockEntry> | undefined, foundIn: string, out: FoundPackage[], depth = 0): void {
  if (!deps || depth > 64) return;
  for (const [name, e] of Object.entries(deps)) {
    if (typeof e?.version === 'string') out.push(pkg(name, e.version, foundIn));
    fromV1(e?.dependencies, foundIn, out, depth + 1);
  }
}

export function parsePackageLock(text: string, foundIn: string): FoundPackage[] {
  let lock: { packages?: Record<string, LockEntry>; dependencies?: Record<string, LockEntry> };
  try {
    lock = JSON.parse(text) as typeof lock;
  } catch {
    return [];
  }
  const out: FoundPackage[] = [];
  if (lock && typeof lock.packages === 'object') {
    for (const [key, e] of Object.entries(lock.packages)) {
      if (key === '') continue; // the project itself, not something it installs
      const name = e?.name ?? lockKeyName(key);
      if (!name || e?.link || typeof e?.version !== 'string') continue;
      out.push(pkg(name, e.version, foundIn, e.license));
    }
    return out;
  }
  fromV1(lock?.dependencies, foundIn, out);
  return out;
}

/** One installed package's `package.json` (undefined when it has no name or version). */
export function parsePackageJson(text: string, foundIn: string): FoundPackage | undefined {
  try {
    const j = JSON.parse(text) as { name?: unknown; version?: unknown; license?: unknown };
    if (typeof j?.name !== 'string' || typeof j.version !== 'string' || !j.name || !j.version) return undefined;
    return pkg(j.name, j.version, foundIn, j.license);
  } catch {
    return undefined;
  }
}

/** Whether an image path is a package's own `package.json` under `node_modules`. */
export function isInstalledPackageJson(p: string): boolean {
  const parts = p.split('/');
  if (parts[parts.length - 1] !== 'package.json' || parts.length < 3) return false;
  // …/node_modules/NAME/package.json or …/node_modules/@scope/NAME/package.json
  const n = parts.length;
  return parts[n - 3] === 'node_modules' || (parts[n - 4] === 'node_modules' && parts[n - 3]!.startsWith('@'));
}
