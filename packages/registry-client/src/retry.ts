/** Retry policy: exponential backoff with full jitter, capped; Retry-After wins when given. */
export interface RetryPolicy {
  /** Attempts in total (1 = no retry). Default 5. */
  attempts: number;
  /** First backoff in ms. Default 250. */
  baseMs: number;
  /** Longest single wait in ms. Default 10 000; a Retry-After longer than `maxRetryAfterMs` fails. */
  maxMs: number;
  /** Longest Retry-After honoured (ms). Default 60 000. */
  maxRetryAfterMs: number;
  /**
   * Longest one request may take over all its attempts and waits (ms), so that a silent or
   * failing registry ends in an error in bounded time; for a blob download, the longest it may
   * go without receiving a byte. Default 120 000.
   */
  totalMs: number;
}

/** Statuses worth retrying: timeouts, rate limits and server errors. */
export const RETRIABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseMs: 250, maxMs: 10_000, maxRetryAfterMs: 60_000, totalMs: 120_000 };

/** The time (epoch ms) after which a request started now makes no further attempt. */
export function retryDeadline(policy: RetryPolicy, now = Date.now()): number {
  return now + policy.totalMs;
}

/** Whether an attempt after waiting `waitMs` would still start before `deadline`. */
export function fitsDeadline(deadline: number, waitMs: number, now = Date.now()): boolean {
  return now + waitMs < deadline;
}

/** How long the next attempt may wait for an answer: `limitMs`, or less when the deadline is nearer (at least 1 ms). */
export function timeLeft(deadline: number, limitMs: number, now = Date.now()): number {
  return Math.max(1, Math.min(limitMs, deadline - now));
}

/** How long to wait before attempt `attempt` (1-based count of failures so far). */
export function backoffMs(policy: RetryPolicy, attempt: number, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined && retryAfterMs >= 0) return Math.min(retryAfterMs, policy.maxRetryAfterMs);
  const cap = Math.min(policy.maxMs, policy.baseMs * 2 ** (attempt - 1));
  return cap / 2 + Math.random() * (cap / 2);
}

/** `Retry-After: <seconds>` or `Retry-After: <HTTP date>`, in ms from now. */
export function parseRetryAfter(v: string | undefined, now = Date.now()): number | undefined {
  if (!v) return undefined;
  const s = v.trim();
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason ?? new DOMException('aborted', 'AbortError'));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal!.reason ?? new DOMException('aborted', 'AbortError'));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The retries of one operation under a policy: the one place that counts failures, computes
 * backoff and keeps the deadline. Each retry loop asks `next()` after a failure: the wait
 * before the next attempt, or undefined when the attempts or the time are used up.
 */
export class RetryBudget {
  private failures = 0;
  private until: number;

  /** `deadline: false`: bounded by the number of attempts only (an upload may take long). */
  constructor(
    readonly policy: RetryPolicy,
    private readonly o: { deadline?: boolean } = {},
  ) {
    this.until = o.deadline === false ? Number.POSITIVE_INFINITY : retryDeadline(policy);
  }

  /** The 1-based number of the attempt under way. */
  get attempt(): number {
    return this.failures + 1;
  }

  /** Some attempt has failed (and was retried or is about to give up). */
  get retried(): boolean {
    return this.failures > 0;
  }

  /** The time (epoch ms) after which no further attempt starts. */
  get deadline(): number {
    return this.until;
  }

  /** After a failure: how long to wait before the next attempt, or undefined to give up. */
  next(retryAfterMs?: number): number | undefined {
    this.failures++;
    const wait = backoffMs(this.policy, this.failures, retryAfterMs);
    if (this.failures >= this.policy.attempts || !fitsDeadline(this.until, wait)) return undefined;
    return wait;
  }

  /** Progress was made (bytes arrived, a chunk was accepted): failures and the deadline start again. */
  progressed(): void {
    this.failures = 0;
    if (this.o.deadline !== false) this.until = retryDeadline(this.policy);
  }
}
