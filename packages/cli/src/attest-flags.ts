import { UsageError } from './errors.js';

/** One attestation request (`--attest type=…`, `--provenance`, `--sbom`), as buildx reads it. */
export interface AttestRequest {
  type: 'provenance' | 'sbom';
  attrs: Record<string, string>;
}

const TYPES = ['provenance', 'sbom'] as const;
const BOOL = /^(?:1|t|T|TRUE|true|True|0|f|F|FALSE|false|False)$/;
const TRUE = /^(?:1|t|T|TRUE|true|True)$/;

function csv(flag: string, value: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of value.split(',')) {
    const i = part.indexOf('=');
    if (i <= 0) throw new UsageError(`${flag} "${value}": expected KEY=VALUE pairs separated by commas`);
    out[part.slice(0, i)] = part.slice(i + 1);
  }
  return out;
}

function checkAttrs(flag: string, r: AttestRequest): AttestRequest {
  const mode = r.attrs.mode;
  if (r.type === 'provenance' && mode !== undefined && mode !== 'min' && mode !== 'max') {
    throw new UsageError(`${flag}: provenance mode "${mode}" is not valid; valid: min, max`);
  }
  const disabled = r.attrs.disabled;
  if (disabled !== undefined && !BOOL.test(disabled)) throw new UsageError(`${flag}: disabled="${disabled}" is not a boolean; valid: true, false`);
  return r;
}

/** `--provenance` / `--sbom`: a boolean, or the attributes of `--attest type=provenance|sbom,…`. */
function shorthand(type: AttestRequest['type'], flag: string, value: string | undefined): AttestRequest | undefined {
  if (value === undefined) return undefined;
  if (BOOL.test(value)) return { type, attrs: TRUE.test(value) ? {} : { disabled: 'true' } };
  return checkAttrs(flag, { type, attrs: csv(flag, value) });
}

/**
 * The attestations a build asks for; later flags of a type win, as in buildx. Disabled ones
 * are left out. Unknown types or values are usage errors listing the valid ones.
 */
export function parseAttestations(o: { attest?: string[]; provenance?: string; sbom?: string }): AttestRequest[] {
  const byType = new Map<string, AttestRequest>();
  for (const a of o.attest ?? []) {
    const attrs = csv('--attest', a);
    const type = attrs.type;
    if (!type || !(TYPES as readonly string[]).includes(type)) throw new UsageError(`--attest "${a}": type "${type ?? ''}" is not valid; valid: ${TYPES.join(', ')}`);
    const { type: _t, ...rest } = attrs;
    byType.set(type, checkAttrs('--attest', { type: type as AttestRequest['type'], attrs: rest }));
  }
  const p = shorthand('provenance', '--provenance', o.provenance);
  if (p) byType.set('provenance', p);
  const s = shorthand('sbom', '--sbom', o.sbom);
  if (s) byType.set('sbom', s);
  return [...byType.values()].filter((r) => !(r.attrs.disabled !== undefined && TRUE.test(r.attrs.disabled)));
}
