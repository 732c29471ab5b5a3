/** Python distributions from `*.dist-info/METADATA` (core metadata: `Name:`, `Version:`, `License:` headers). */
import { parseParagraphs, purlEncode, type FoundPackage } from './types.js';

/** `pkg:pypi/NAME@VERSION`, the name normalised as PEP 503 (lower case, runs of `-_.` as `-`). */
export function pypiPurl(name: string, version: string): string {
  return `pkg:pypi/${purlEncode(name.toLowerCase().replace(/[-_.]+/g, '-'))}@${purlEncode(version)}`;
}

export function isDistInfoMetadata(p: string): boolean {
  const parts = p.split('/');
  return parts.length >= 2 && parts[parts.length - 1] === 'METADATA' && parts[parts.length - 2]!.endsWith('.dist-info');
}

export function parseMetadata(text: string, foundIn: string): FoundPackage | undefined {
  // the headers end at the first blank line; the description follows
  const head = parseParagraphs(text.split(/\r?\n\r?\n/)[0] ?? '')[0];
  const name = head?.get('Name');
  const version = head?.get('Version');
  if (!name || !version) return undefined;
  const license = head.get('License-Expression') ?? head.get('License');
  return { kind: 'python', name, version, purl: pypiPurl(name, version), foundIn, ...(license && !license.includes('\n') ? { license } : {}) };
}
