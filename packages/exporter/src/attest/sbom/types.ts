/** A package found in an image's package databases. */
export interface FoundPackage {
  kind: 'deb' | 'apk' | 'npm' | 'python';
  name: string;
  version: string;
  /** Package URL (https://github.com/package-url/purl-spec). */
  purl: string;
  /** The database file it was read from (image path, no leading `/`). */
  foundIn: string;
  license?: string;
  arch?: string;
}

/** The distribution (`/etc/os-release` ID and VERSION_ID): the purl namespace of OS packages. */
export interface Distro {
  id: string;
  versionId?: string;
}

/** A purl path segment or version, percent-encoded as the purl spec asks. */
export function purlEncode(s: string): string {
  return encodeURIComponent(s);
}

/** `?k=v&…` of the qualifiers that are set, sorted by key as the purl spec asks. */
export function purlQualifiers(q: Record<string, string | undefined>): string {
  const parts = Object.keys(q)
    .sort()
    .filter((k) => q[k])
    .map((k) => `${k}=${purlEncode(q[k]!)}`);
  return parts.length > 0 ? `?${parts.join('&')}` : '';
}

/** Key-value paragraphs (`Key: value`, continuation lines indented), as dpkg and Python METADATA write them. */
export function parseParagraphs(text: string): Array<Map<string, string>> {
  const out: Array<Map<string, string>> = [];
  let cur = new Map<string, string>();
  let last: string | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (cur.size > 0) out.push(cur);
      cur = new Map();
      last = undefined;
      continue;
    }
    if ((line.startsWith(' ') || line.startsWith('\t')) && last) {
      cur.set(last, `${cur.get(last)}\n${line.trim()}`);
      continue;
    }
    const i = line.indexOf(':');
    if (i <= 0) continue;
    last = line.slice(0, i).trim();
    if (!cur.has(last)) cur.set(last, line.slice(i + 1).trim());
  }
  if (cur.size > 0) out.push(cur);
  return out;
}
