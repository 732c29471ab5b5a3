/**
 * What apt-get says it downloaded, read from a build's plain progress (`#N ` before each line
 * of RUN output): the index files fetched (`Get:` with no package) and found current (`Hit:`),
 * the .debs fetched (`Get:` of a package), "Need to get X[/Y] of archives" (X to download of Y,
 * the rest already in /var/cache/apt/archives) and the bytes of every "Fetched N in Ts" line.
 */
export interface AptReport {
  /** Index files downloaded (`InRelease`, `Packages`, …), in order. */
  listGets: string[];
  /** Index files the mirror said were current (`Hit:`). */
  listHits: number;
  /** Packages whose .deb was downloaded, in order. */
  debGets: string[];
  /** Bytes to download of all the archives the install needs (from the last "Need to get" line). */
  needToGet?: { bytes: number; total: number };
  /** Bytes apt reports it fetched, summed over every "Fetched" line (update and install). */
  fetched: number;
}

const UNITS: Record<string, number> = { B: 1, kB: 1e3, MB: 1e6, GB: 1e9 };
const SIZE = String.raw`([\d.,]+ (?:B|kB|MB|GB))`;

/** apt's sizes ("53.1 kB", "15.0 MB"; decimal units, as apt prints them) in bytes. */
export function aptBytes(text: string): number {
  const m = /^([\d.,]+) (B|kB|MB|GB)$/.exec(text.trim());
  if (!m) throw new Error(`not an apt size: ${text}`);
  return Math.round(Number(m[1]!.replace(/,/g, '')) * UNITS[m[2]!]!);
}

export function aptReport(progress: string): AptReport {
  const report: AptReport = { listGets: [], listHits: 0, debGets: [], fetched: 0 };
  for (const raw of progress.split('\n')) {
    const line = raw.replace(/^#\d+ /, '').trim();
    // Get:1 http://deb.debian.org/debian bookworm/main amd64 hello amd64 2.10-3 [53.1 kB]
    const deb = new RegExp(String.raw`^Get:\d+ \S+ \S+ \S+ (\S+) \S+ \S+ \[${SIZE}\]$`).exec(line);
    // Get:2 http://deb.debian.org/debian bookworm/main amd64 Packages [8790 kB]
    const list = new RegExp(String.raw`^Get:\d+ \S+ .*?(\S+) \[${SIZE}\]$`).exec(line);
    const need = new RegExp(String.raw`^Need to get ${SIZE}(?:/${SIZE})? of archives`).exec(line);
    const fetched = new RegExp(String.raw`^Fetched ${SIZE} in `).exec(line);
    if (deb) report.debGets.push(deb[1]!);
    else if (list) report.listGets.push(list[1]!);
    else if (/^Hit:\d+ /.test(line)) report.listHits++;
    else if (need) report.needToGet = { bytes: aptBytes(need[1]!), total: aptBytes(need[2] ?? need[1]!) };
    else if (fetched) report.fetched += aptBytes(fetched[1]!);
  }
  return report;
}
