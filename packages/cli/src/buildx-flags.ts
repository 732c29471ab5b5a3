import { parseAddHost, parseShmSize, parseUlimit, type RunHostOptions } from '@hoist/builder';
import type { Platform } from '@hoist/oci';
import { UsageError } from './errors.js';

/** Where `--annotation TYPE:K=V` goes (buildx's names). */
export const ANNOTATION_TYPES = ['manifest', 'index', 'manifest-descriptor', 'index-descriptor'] as const;
export type AnnotationType = (typeof ANNOTATION_TYPES)[number];

export interface Annotation {
  type: AnnotationType;
  /** `manifest[linux/arm64]:…` applies only to that platform's manifest. */
  platform?: string;
  key: string;
  value: string;
}

/** `--label K=V` as buildx parses it: a bare `K` is an empty label. */
export function parseLabels(list: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const i = item.indexOf('=');
    const key = i < 0 ? item : item.slice(0, i);
    if (!key) throw new UsageError(`--label "${item}": expected KEY=VALUE`);
    out[key] = i < 0 ? '' : item.slice(i + 1);
  }
  return out;
}

const TYPE_RE = /^([a-z-]+)(?:\[([A-Za-z0-9_./-]+)\])?$/;

/** `--annotation [TYPE[PLATFORM][,TYPE…]:]KEY=VALUE`; without a type, the manifest (as buildx). */
export function parseAnnotations(list: readonly string[]): Annotation[] {
  const out: Annotation[] = [];
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`--annotation "${item}": expected [TYPE:]KEY=VALUE`);
    const left = item.slice(0, eq);
    const value = item.slice(eq + 1);
    const colon = left.lastIndexOf(':');
    const key = left.slice(colon + 1);
    if (!key) throw new UsageError(`--annotation "${item}": the key is empty`);
    const types = colon < 0 ? ['manifest'] : left.slice(0, colon).split(',');
    for (const t of types) {
      const m = TYPE_RE.exec(t);
      if (!m || !(ANNOTATION_TYPES as readonly string[]).includes(m[1]!)) {
        throw new UsageError(`--annotation "${item}": unknown type "${t}"; valid: ${ANNOTATION_TYPES.join(', ')} (optionally with [os/arch])`);
      }
      out.push({ type: m[1] as AnnotationType, key, value, ...(m[2] ? { platform: m[2] } : {}) });
    }
  }
  return out;
}

/** The annotations of one type that apply to a single-platform build for `platform`. */
export function annotationsFor(list: readonly Annotation[], type: AnnotationType, platform: Platform): Record<string, string> | undefined {
  const p = `${platform.os}/${platform.architecture}${platform.variant ? `/${platform.variant}` : ''}`;
  const hits = list.filter((a) => a.type === type && (!a.platform || a.platform === p || a.platform === `${platform.os}/${platform.architecture}`));
  if (hits.length === 0) return undefined;
  return Object.fromEntries(hits.map((a) => [a.key, a.value]));
}

/** A single-platform build writes one manifest and no index: index annotations have nowhere to go (BuildKit refuses them too). */
export function refuseIndexAnnotations(list: readonly Annotation[]): void {
  const bad = list.find((a) => a.type === 'index' || a.type === 'index-descriptor');
  if (bad) {
    throw new UsageError(
      `--annotation ${bad.type}:${bad.key}: a single-platform build produces one image manifest, not an index (index annotations are not supported for single platform export); use manifest: or manifest-descriptor:`,
    );
  }
}

/** `--add-host`, `--shm-size`, `--ulimit` (bad values: usage errors naming the valid ones). */
export function parseRunHost(f: { addHost?: string[]; shmSize?: string; ulimit?: string[] }): RunHostOptions | undefined {
  try {
    const o: RunHostOptions = {};
    if (f.addHost?.length) o.extraHosts = f.addHost.map(parseAddHost);
    if (f.shmSize !== undefined) o.shmSizeBytes = parseShmSize(f.shmSize);
    if (f.ulimit?.length) o.ulimits = f.ulimit.map(parseUlimit);
    return Object.keys(o).length > 0 ? o : undefined;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}
