export type CacheErrorCode = 'CACHE_INVALID' | 'CACHE_VERSION' | 'CACHE_SPEC_INVALID' | 'CACHE_LAYER_MISSING';

export class CacheError extends Error {
  readonly code: CacheErrorCode;
  constructor(code: CacheErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CacheError';
    this.code = code;
  }
}
