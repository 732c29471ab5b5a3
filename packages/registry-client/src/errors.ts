/**
 * Typed errors of the registry client. Every failure of a registry operation ends in a
 * `RegistryError`: it keeps the OCI error code(s) from the response body, the HTTP status, the
 * registry and repository, whether retrying later may help, and a sentence a user can act on.
 */
export type RegistryErrorCode =
  | 'UNAUTHORIZED' // credentials missing or rejected
  | 'DENIED' // authenticated but not allowed
  | 'NAME_UNKNOWN' // repository does not exist
  | 'MANIFEST_UNKNOWN'
  | 'BLOB_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'UNSUPPORTED' // e.g. a schema 1 manifest, or an operation the registry refuses
  | 'PLATFORM_UNKNOWN' // no manifest for the wanted platform in an index
  | 'DIGEST_MISMATCH' // bytes received do not hash to the digest asked for
  | 'SIZE_MISMATCH' // more (or fewer) bytes than the descriptor says
  | 'TOO_LARGE' // a manifest or token response over its size cap
  | 'TOO_MANY_REQUESTS'
  | 'UNAVAILABLE' // 5xx after retries
  | 'NETWORK' // connection refused/reset/timed out after retries
  | 'TIMEOUT' // connections accepted, but no answer within the header timeout, until the retry deadline
  | 'TLS' // certificate verification failed
  | 'PROTOCOL' // the registry answered something the spec does not allow
  | 'CREDENTIALS' // a credential helper or the config file failed
  | 'STORE' // the local store could not be read or written
  | 'IMAGE_INVALID' // layers that do not match the image config (diff_ids), or that are unsafe to unpack
  | 'ABORTED'
  | 'UNKNOWN';

/** One entry of the OCI error body `{"errors":[{code,message,detail}]}`. */
export interface OciErrorEntry {
  code: string;
  message?: string;
  detail?: unknown;
}

export interface RegistryErrorInit {
  registry: string;
  repository?: string;
  status?: number;
  ociErrors?: OciErrorEntry[];
  temporary?: boolean;
  /** A sentence telling the user what to do about it. */
  hint?: string;
  cause?: unknown;
}

export class RegistryError extends Error {
  readonly code: RegistryErrorCode;
  readonly registry: string;
  readonly repository: string | undefined;
  readonly status: number | undefined;
  readonly ociErrors: OciErrorEntry[];
  readonly temporary: boolean;
  readonly hint: string;

  constructor(code: RegistryErrorCode, message: string, init: RegistryErrorInit) {
    const hint = init.hint ?? defaultHint(code, init.registry, init.repository);
    const where = init.repository ? `${init.registry}/${init.repository}` : init.registry;
    const oci = (init.ociErrors ?? []).map((e) => `${e.code}${e.message ? `: ${e.message}` : ''}`).join('; ');
    const status = init.status !== undefined ? ` (HTTP ${init.status}${oci ? `, ${oci}` : ''})` : oci ? ` (${oci})` : '';
    super(`${where}: ${message}${status}. ${hint}`, init.cause !== undefined ? { cause: init.cause } : undefined);
    this.name = 'RegistryError';
    this.code = code;
    this.registry = init.registry;
    this.repository = init.repository;
    this.status = init.status;
    this.ociErrors = init.ociErrors ?? [];
    this.temporary = init.temporary ?? false;
    this.hint = hint;
  }

  /** The OCI error codes from the registry's response body (e.g. `MANIFEST_UNKNOWN`). */
  get ociCodes(): string[] {
    return this.ociErrors.map((e) => e.code);
  }
}

export function isRegistryError(e: unknown, code?: RegistryErrorCode): e is RegistryError {
  return e instanceof RegistryError && (code === undefined || e.code === code);
}

function defaultHint(code: RegistryErrorCode, registry: string, repository: string | undefined): string {
  const repo = repository ? `${registry}/${repository}` : registry;
  switch (code) {
    case 'UNAUTHORIZED':
      return `Log in with \`hoist login ${registry}\` (or check the credentials in your Docker config), then retry`;
    case 'DENIED':
      return `Check that ${repo} is spelled right and that your account may access it`;
    case 'NAME_UNKNOWN':
      return `Check the repository name ${repo}`;
    case 'MANIFEST_UNKNOWN':
      return `Check that the tag or digest exists in ${repo}`;
    case 'BLOB_UNKNOWN':
      return `The registry lost a blob the manifest references; push the image again`;
    case 'MANIFEST_INVALID':
      return `The registry rejected or served a malformed manifest; check the image with \`skopeo inspect\``;
    case 'UNSUPPORTED':
      return `Use a registry or image format that supports this (OCI or Docker schema 2)`;
    case 'PLATFORM_UNKNOWN':
      return `Choose one of the platforms the image offers with --platform`;
    case 'DIGEST_MISMATCH':
    case 'SIZE_MISMATCH':
      return `Nothing was stored; retry, and if it persists the registry or a proxy between you and it is corrupting data`;
    case 'TOO_LARGE':
      return `The registry sent more data than allowed; check that ${registry} is a container registry`;
    case 'TOO_MANY_REQUESTS':
      return `The registry is rate-limiting you; wait and retry, or log in to get a higher limit`;
    case 'UNAVAILABLE':
      return `The registry is failing; retry later`;
    case 'NETWORK':
      return `Check that ${registry} is reachable from here (DNS, proxy, firewall), then retry`;
    case 'TIMEOUT':
      return `${registry} accepts connections but does not answer; check that the registry (or a proxy in front of it) is healthy. HOIST_REGISTRY_HEADER_TIMEOUT and HOIST_REGISTRY_DEADLINE (seconds) set how long hoist waits`;
    case 'TLS':
      return `Put the registry's CA certificate in /etc/docker/certs.d/${registry}/ca.crt or pass it with --tls-ca FILE; or, if ${registry} speaks plain HTTP or its certificate cannot be verified, allow that with --insecure-registry ${registry}`;
    case 'PROTOCOL':
      return `Check that ${registry} is an OCI distribution registry`;
    case 'CREDENTIALS':
      return `Check your Docker config file and credential helpers`;
    case 'STORE':
      return `Check free space and permissions of the local store, or run \`hoist fsck\``;
    case 'IMAGE_INVALID':
      return `The image is broken or unsafe to unpack and was not stored as usable; ask its publisher to rebuild and push it`;
    case 'ABORTED':
      return `The operation was cancelled`;
    case 'UNKNOWN':
      return `Retry; if it persists, check the registry's logs`;
  }
}

/** Map the OCI error code in a response body to ours. */
export function codeFromOci(status: number, oci: OciErrorEntry[]): RegistryErrorCode {
  const first = oci[0]?.code;
  switch (first) {
    case 'UNAUTHORIZED':
      return 'UNAUTHORIZED';
    case 'DENIED':
      return 'DENIED';
    case 'NAME_UNKNOWN':
    case 'NAME_INVALID':
      return 'NAME_UNKNOWN';
    case 'MANIFEST_UNKNOWN':
      return 'MANIFEST_UNKNOWN';
    case 'BLOB_UNKNOWN':
    case 'MANIFEST_BLOB_UNKNOWN':
      return 'BLOB_UNKNOWN';
    case 'MANIFEST_INVALID':
    case 'MANIFEST_UNVERIFIED':
    case 'TAG_INVALID':
      return 'MANIFEST_INVALID';
    case 'DIGEST_INVALID':
      return 'DIGEST_MISMATCH';
    case 'SIZE_INVALID':
      return 'SIZE_MISMATCH';
    case 'UNSUPPORTED':
      return 'UNSUPPORTED';
    case 'TOOMANYREQUESTS':
      return 'TOO_MANY_REQUESTS';
    default:
      break;
  }
  if (status === 401) return 'UNAUTHORIZED';
  if (status === 403) return 'DENIED';
  if (status === 429) return 'TOO_MANY_REQUESTS';
  if (status >= 500) return 'UNAVAILABLE';
  return 'UNKNOWN';
}

/** Parse an OCI error body; tolerant of anything else. */
export function parseOciErrors(body: Buffer | string): OciErrorEntry[] {
  try {
    const v = JSON.parse(body.toString()) as { errors?: unknown; details?: unknown };
    if (Array.isArray(v.errors)) {
      return v.errors
        .filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string')
        .map((e) => {
          const entry: OciErrorEntry = { code: String(e.code) };
          if (typeof e.message === 'string') entry.message = e.message;
          if (e.detail !== undefined) entry.detail = e.detail;
          return entry;
        });
    }
  } catch {
    /* not JSON */
  }
  return [];
}
