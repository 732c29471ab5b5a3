/** Typed errors of the OCI layer. Codes are stable: tests and the CLI switch on them. */
export type OciErrorCode =
  | 'DIGEST_INVALID'
  | 'DIGEST_MISMATCH'
  | 'SIZE_MISMATCH'
  | 'BLOB_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'REFERENCE_INVALID'
  | 'STORE_CORRUPT'
  | 'STORE_LOCKED'
  /** The store root is open to other users and cannot be made private. */
  | 'STORE_PERMISSIONS'
  | 'TOO_LARGE'
  /** A layer blob does not decompress (a corrupt zstd stream). */
  | 'LAYER_INVALID'
  /** A layer cannot be read here (zstd without the `zstd` binary). */
  | 'LAYER_UNSUPPORTED'
  /** A layer's uncompressed bytes do not hash to its diff_id. */
  | 'DIFF_ID_MISMATCH';

export class OciError extends Error {
  readonly code: OciErrorCode;
  constructor(code: OciErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OciError';
    this.code = code;
  }
}
