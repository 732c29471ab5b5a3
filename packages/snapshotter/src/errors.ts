/** Typed errors of the snapshotter. Codes are stable: tests, the builder and the CLI switch on them. */
export type SnapshotErrorCode =
  /** A layer entry (or a link it contains) would write outside the target root. */
  | 'LAYER_UNSAFE_PATH'
  /** A layer expands beyond the configured limit, or a header is oversized. */
  | 'LAYER_TOO_LARGE'
  /** A layer is not a well-formed tar (bad checksum, truncated, bad numbers, dangling hard link). */
  | 'LAYER_INVALID'
  /** A layer uses something this build cannot handle (sparse files, zstd without the binary). */
  | 'LAYER_UNSUPPORTED'
  /** The uncompressed layer does not hash to the diff_id it was announced with. */
  | 'DIFF_ID_MISMATCH'
  /** A diff_id was asked for that was never unpacked or committed here. */
  | 'SNAPSHOT_UNKNOWN'
  | 'MOUNT_FAILED'
  /** The lower directories do not fit in the kernel's mount-option page. */
  | 'TOO_MANY_LAYERS'
  /** A file changed while it was being written into a layer. */
  | 'TREE_CHANGED'
  /** An external helper (mknod, setfattr, getfattr, cp, zstd) failed. */
  | 'HELPER_FAILED'
  /** The mount was used after `commit` or `release`. */
  | 'RELEASED'
  /** Inside a user namespace: a layer needs an owner id the namespace does not map. */
  | 'ID_NOT_MAPPED'
  /** The snapshot store was made for another privilege mode (root vs user namespace). */
  | 'STORE_MODE'
  /** A file of the store (e.g. an ownership record of the no-privilege mode) is not in its format. */
  | 'STORE_CORRUPT'
  | 'ABORTED';

export class SnapshotError extends Error {
  readonly code: SnapshotErrorCode;
  constructor(code: SnapshotErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SnapshotError';
    this.code = code;
  }
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new SnapshotError('ABORTED', 'operation aborted', { cause: signal.reason });
}
