/**
 * in-toto Statement v1 (https://in-toto.io/Statement/v1) as BuildKit writes it for an image:
 * one subject per image name, as a package URL with the platform, digest = the image manifest's.
 */
import { digestHex, parseReference, type Digest, type Platform } from '@hoist/oci';

export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const PREDICATE_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';
export const PREDICATE_SPDX = 'https://spdx.dev/Document';

export interface Subject {
  name: string;
  digest: Record<string, string>;
}

export interface Statement<P = unknown> {
  _type: typeof STATEMENT_TYPE;
  subject: Subject[];
  predicateType: string;
  predicate: P;
}

function platformString(p: Platform): string {
  return [p.os, p.architecture, ...(p.variant ? [p.variant] : [])].join('/');
}

/**
 * `pkg:docker/NAMESPACE/NAME@TAG?platform=OS%2FARCH`, as BuildKit's purl helper makes it from an
 * image reference: the familiar name (no `docker.io/`, no `library/`), the tag (`latest` when
 * none) or the digest, the platform as a qualifier.
 */
export function imagePurl(ref: string, platform?: Platform): string {
  const r = parseReference(ref);
  let name = r.registry === 'docker.io' ? r.repository.replace(/^library\//, '') : `${r.registry}/${r.repository}`;
  name = name.split('/').map((s) => encodeURIComponent(s).replace(/%3A/gi, ':')).join('/');
  const version = r.digest ? r.digest : (r.tag ?? 'latest');
  const q = platform ? `?platform=${encodeURIComponent(platformString(platform))}` : '';
  return `pkg:docker/${name}@${encodeURIComponent(version).replace(/%3A/gi, ':')}${q}`;
}

/** The statement's subjects: one per name (BuildKit's `_` when the image has none). */
export function imageSubjects(names: readonly string[], digest: Digest, platform: Platform): Subject[] {
  const d = { sha256: digestHex(digest) };
  if (names.length === 0) return [{ name: '_', digest: d }];
  return names.map((n) => ({ name: imagePurl(n, platform), digest: d }));
}

export function statement<P>(subject: Subject[], predicateType: string, predicate: P): Statement<P> {
  return { _type: STATEMENT_TYPE, subject, predicateType, predicate };
}
