/** Alpine packages from apk's database (`/lib/apk/db/installed`): one letter-keyed block per package. */
import { purlEncode, purlQualifiers, type Distro, type FoundPackage } from './types.js';

export const APK_INSTALLED = 'lib/apk/db/installed';

/** `pkg:apk/alpine/NAME@VERSION?arch=ARCH&distro=alpine-3.19.1`. */
export function apkPurl(o: { name: string; version: string; arch?: string; distro?: Distro }): string {
  const ns = o.distro?.id ?? 'alpine';
  const distro = o.distro ? `${o.distro.id}${o.distro.versionId ? `-${o.distro.versionId}` : ''}` : undefined;
  return `pkg:apk/${purlEncode(ns)}/${purlEncode(o.name)}@${purlEncode(o.version)}${purlQualifiers({ arch: o.arch, distro })}`;
}

export function parseApkInstalled(text: string, o: { foundIn: string; distro?: Distro }): FoundPackage[] {
  const out: FoundPackage[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const f = new Map<string, string>();
    for (const line of block.split('\n')) {
      // `P:name`, `V:version`, `A:arch`, `L:license`; file lists (F:, R:, …) repeat, first wins
      if (line.length > 2 && line[1] === ':' && !f.has(line[0]!)) f.set(line[0]!, line.slice(2));
    }
    const name = f.get('P');
    const version = f.get('V');
    if (!name || !version) continue;
    const arch = f.get('A');
    const license = f.get('L');
    out.push({ kind: 'apk', name, version, ...(arch ? { arch } : {}), ...(license ? { license } : {}), purl: apkPurl({ name, version, ...(arch ? { arch } : {}), ...(o.distro ? { distro: o.distro } : {}) }), foundIn: o.foundIn });
  }
  return out;
}
