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
export function parseAttestations(o: AttestFlags): AttestRequest[] {
  return [...requestsByType(o).values()].filter((r) => !isDisabled(r));
}

export interface AttestFlags {
  attest?: string[];
  provenance?: string;
  sbom?: string;
}

function isDisabled(r: AttestRequest): boolean {
  return r.attrs.disabled !== undefined && TRUE.test(r.attrs.disabled);
}

function requestsByType(o: AttestFlags): Map<string, AttestRequest> {
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
  return byType;
}

/** What a build attaches: provenance (mode, builder id) and/or an SBOM. */
export interface AttestationPlan {
  provenance?: { mode: 'min' | 'max'; builderId?: string; reproducible?: boolean };
  sbom?: Record<string, never>;
  /** Only buildx's default (provenance mode=min): nothing was asked for explicitly. */
  defaultOnly: boolean;
}

/**
 * The attestations of a build, as buildx decides them: what the flags ask for, plus provenance
 * `mode=min` by default unless the flags set provenance (even to false) or
 * `BUILDX_NO_DEFAULT_ATTESTATIONS` is set (to anything but a false value). What hoist cannot do
 * is a usage error: an SBOM generator image, SLSA provenance other than v1.
 */
export function planAttestations(o: AttestFlags, env: NodeJS.ProcessEnv = process.env): AttestationPlan {
  const byType = requestsByType(o);
  const noDefault = env.BUILDX_NO_DEFAULT_ATTESTATIONS !== undefined && env.BUILDX_NO_DEFAULT_ATTESTATIONS !== '' && !/^(?:0|f|F|FALSE|false|False)$/.test(env.BUILDX_NO_DEFAULT_ATTESTATIONS);
  const p = byType.get('provenance');
  const s = byType.get('sbom');
  const plan: AttestationPlan = { defaultOnly: !p && !(s && !isDisabled(s)) };
  if (p ? !isDisabled(p) : !noDefault) plan.provenance = provenanceOptions(p?.attrs ?? {});
  if (s && !isDisabled(s)) {
    if (s.attrs.generator !== undefined) {
      throw new UsageError(`--sbom generator=${s.attrs.generator}: SBOM generator images are not supported; hoist writes the SPDX SBOM itself from the image's package databases (dpkg, apk, npm, Python): use --sbom=true`);
    }
    plan.sbom = {};
  }
  return plan;
}

function provenanceOptions(attrs: Record<string, string>): NonNullable<AttestationPlan['provenance']> {
  const version = attrs.version;
  if (version !== undefined && version !== 'v1') throw new UsageError(`--provenance version=${version}: hoist writes SLSA provenance v1 only; valid: v1`);
  return {
    mode: attrs.mode === 'max' ? 'max' : 'min',
    ...(attrs['builder-id'] ? { builderId: attrs['builder-id'] } : {}),
    ...(attrs.reproducible !== undefined && TRUE.test(attrs.reproducible) ? { reproducible: true } : {}),
  };
}
