import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { OciError } from './errors.js';

declare const digestBrand: unique symbol;
/** `sha256:<64 hex>`; only `parseDigest` or hashing makes one. */
export type Digest = string & { readonly [digestBrand]: true };

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function parseDigest(s: string): Digest {
  if (!DIGEST_RE.test(s)) {
    throw new OciError('DIGEST_INVALID', `invalid digest "${s}": expected sha256:<64 lowercase hex>`);
  }
  return s as Digest;
}

export function isDigest(s: string): s is Digest {
  return DIGEST_RE.test(s);
}

export function digestHex(d: Digest): string {
  return d.slice('sha256:'.length);
}

export function sha256(data: Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest;
}

/** A pass-through stream that hashes and counts what flows through it. */
export class DigestingStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private count = 0;
  private result: Digest | undefined;
  constructor(private readonly limit = Number.POSITIVE_INFINITY) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.count += chunk.length;
    if (this.count > this.limit) {
      cb(new OciError('TOO_LARGE', `stream exceeds the expected size of ${this.limit} bytes`));
      return;
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    this.result = `sha256:${this.hash.digest('hex')}` as Digest;
    cb();
  }
  get size(): number {
    return this.count;
  }
  /** Available once the stream has ended. */
  get digest(): Digest {
    if (!this.result) throw new Error('DigestingStream: digest read before the stream ended');
    return this.result;
  }
}

/**
 * A pass-through that fails the stream unless exactly `size` bytes with `digest` flow through.
 * Every read of a blob goes through one of these: never trust a store or a registry.
 */
export class VerifyingStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private count = 0;
  constructor(
    private readonly expected: Digest,
    private readonly size: number,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.count += chunk.length;
    if (this.size >= 0 && this.count > this.size) {
      cb(new OciError('SIZE_MISMATCH', `blob ${this.expected} is larger than its descriptor size ${this.size}`));
      return;
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    if (this.size >= 0 && this.count !== this.size) {
      cb(new OciError('SIZE_MISMATCH', `blob ${this.expected}: got ${this.count} bytes, descriptor says ${this.size}`));
      return;
    }
    const got = `sha256:${this.hash.digest('hex')}`;
    if (got !== this.expected) {
      cb(new OciError('DIGEST_MISMATCH', `blob digest mismatch: expected ${this.expected}, got ${got}`));
      return;
    }
    cb();
  }
}

/**
 * OCI ChainIDs of a stack of diff_ids (bottom first): the first is its diff_id, each next one
 * `sha256(<previous ChainID> + " " + <diff_id>)` (image-spec config.md, "Layer ChainID").
 */
export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const d of diffIds) out.push(out.length === 0 ? d : sha256(`${out[out.length - 1]} ${d}`));
  return out;
}
