/**
 * Debian packages from dpkg's database (`/var/lib/dpkg/status`, and the one-file-per-package
 * `/var/lib/dpkg/status.d/` of distroless images): installed packages only (`Status: … installed`).
 */
import { parseParagraphs, purlEncode, purlQualifiers, type Distro, type FoundPackage } from './types.js';

export const DPKG_STATUS = 'var/lib/dpkg/status';
export const DPKG_STATUS_DIR = 'var/lib/dpkg/status.d/';

function installed(status: string | undefined): boolean {
  // "want flag status": install ok installed
  return status !== undefined && status.split(/\s+/)[2] === 'installed';
}

/** `pkg:deb/debian/NAME@VERSION?arch=ARCH&distro=debian-12`. */
export function debPurl(o: { name: string; version: string; arch?: string; distro?: Distro }): string {
  const ns = o.distro?.id ?? 'debian';
  const distro = o.distro ? `${o.distro.id}${o.distro.versionId ? `-${o.distro.versionId}` : ''}` : undefined;
  return `pkg:deb/${purlEncode(ns)}/${purlEncode(o.name)}@${purlEncode(o.version)}${purlQualifiers({ arch: o.arch, distro })}`;
}

export function parseDpkgStatus(text: string, o: { foundIn: string; distro?: Distro }): FoundPackage[] {
  const out: FoundPackage[] = [];
  for (const p of parseParagraphs(text)) {
    const name = p.get('Package');
    const version = p.get('Version');
    // the status.d files of distroless images carry no Status field: every entry is installed
    if (!name || !version || (p.has('Status') && !installed(p.get('Status')))) continue;
    const arch = p.get('Architecture');
    out.push({ kind: 'deb', name, version, ...(arch ? { arch } : {}), purl: debPurl({ name, version, ...(arch ? { arch } : {}), ...(o.distro ? { distro: o.distro } : {}) }), foundIn: o.foundIn });
  }
  return out;
}
