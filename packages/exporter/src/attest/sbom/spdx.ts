/**
 * SPDX 2.3 JSON (https://spdx.github.io/spdx-spec/v2.3/) of the packages found in an image:
 * one package per find, with its purl as a PACKAGE-MANAGER external reference, and the document
 * DESCRIBES each. Deterministic for the same image and `created`.
 */
import { createHash } from 'node:crypto';
import type { FoundPackage } from './types.js';

const SOURCE_INFO: Record<FoundPackage['kind'], string> = {
  deb: 'acquired package info from DPKG DB',
  apk: 'acquired package info from APK DB',
  npm: 'acquired package info from installed node module manifest or package-lock.json',
  python: 'acquired package info from installed python package manifest file',
};

/** An SPDX identifier (`SPDXRef-` + letters, digits, `.` and `-`), unique through a short hash of the purl and path. */
function spdxId(p: FoundPackage): string {
  const h = createHash('sha256').update(`${p.purl}\0${p.foundIn}`).digest('hex').slice(0, 16);
  return `SPDXRef-Package-${p.kind}-${p.name.replace(/[^A-Za-z0-9.-]/g, '-')}-${h}`;
}

/** An SPDX license expression, or NOASSERTION when it does not look like one. */
function license(l: string | undefined): string {
  return l && /^[A-Za-z0-9.+\-() ]+$/.test(l) && l.length < 200 ? l : 'NOASSERTION';
}

export interface SpdxOptions {
  /** The document name (the image's name, or its digest). */
  name: string;
  /** Unique URI of this document (derived from the image digest). */
  namespace: string;
  created: Date;
  toolVersion: string;
}

export function spdxDocument(pkgs: readonly FoundPackage[], o: SpdxOptions): Record<string, unknown> {
  const packages = pkgs.map((p) => ({
    name: p.name,
    SPDXID: spdxId(p),
    versionInfo: p.version,
    supplier: 'NOASSERTION',
    downloadLocation: 'NOASSERTION',
    filesAnalyzed: false,
    licenseConcluded: 'NOASSERTION',
    licenseDeclared: license(p.license),
    copyrightText: 'NOASSERTION',
    sourceInfo: `${SOURCE_INFO[p.kind]}: /${p.foundIn}`,
    externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: p.purl }],
  }));
  return {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: o.name,
    documentNamespace: o.namespace,
    creationInfo: { creators: [`Tool: hoist-${o.toolVersion}`], created: o.created.toISOString().replace(/\.\d{3}Z$/, 'Z') },
    packages,
    relationships: packages.map((p) => ({ spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: p.SPDXID })),
  };
}
