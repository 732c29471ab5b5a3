import type { LimitFunction } from 'p-limit';
import type { ProgressFn } from './progress.js';
import type { RetryPolicy } from './retry.js';
import type { RegistrySession } from './transport.js';

/** What the blob and manifest operations need from the client that owns them. */
export interface ClientContext {
  session(registry: string): RegistrySession;
  emit: ProgressFn | undefined;
  /** Bounds concurrent blob transfers across all operations of the client. */
  limit: LimitFunction;
  retry: RetryPolicy;
  /** Blobs larger than this are uploaded in chunks of this size (resumable). */
  chunkSize: number;
  /** Transfers under way, so that concurrent requests for one blob share one transfer. */
  inflight: Map<string, Promise<void>>;
}

/** A repository on a registry. */
export interface RepoRef {
  registry: string;
  repository: string;
}

export function repoName(r: RepoRef): string {
  return `${r.registry}/${r.repository}`;
}
