/**
 * RetryBudget: the one retry policy of the registry client. Counted, never timed: how many
 * retries a policy allows, Retry-After, the deadline (a zero budget of time allows none), and
 * progress starting the count again. Every retry loop of the client goes through it.
 */
import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_RETRY, RetryBudget } from '../src/retry.js';

const policy = { ...DEFAULT_RETRY, attempts: 3, baseMs: 100, maxMs: 1000 };

/** Waits `budget.next()` hands out until it gives up. */
function waits(budget: RetryBudget, afterEach?: (n: number) => void): number[] {
  const out: number[] = [];
  for (let w = budget.next(); w !== undefined; w = budget.next()) {
    out.push(w);
    afterEach?.(out.length);
  }
  return out;
}

describe('RetryBudget', () => {
  it('allows attempts - 1 retries, with growing capped backoff', () => {
    const b = new RetryBudget(policy);
    expect(b.attempt).toBe(1);
    expect(b.retried).toBe(false);
    const w = waits(b);
    expect(w).toHaveLength(2);
    // full jitter over the upper half: [cap/2, cap] with cap = base * 2^(n-1)
    expect(w[0]).toBeGreaterThanOrEqual(50);
    expect(w[0]).toBeLessThanOrEqual(100);
    expect(w[1]).toBeGreaterThanOrEqual(100);
    expect(w[1]).toBeLessThanOrEqual(200);
    expect(b.retried).toBe(true);
  });

  it('honours Retry-After up to maxRetryAfterMs', () => {
    expect(new RetryBudget(policy).next(5000)).toBe(5000);
    expect(new RetryBudget({ ...policy, maxRetryAfterMs: 2000 }).next(5000)).toBe(2000);
  });

  it('no time left: no retry; without a deadline only the attempts count', () => {
    expect(new RetryBudget({ ...policy, totalMs: 0 }).next()).toBeUndefined();
    expect(waits(new RetryBudget({ ...policy, totalMs: 0 }, { deadline: false }))).toHaveLength(2);
  });

  it('progress starts the count again', () => {
    const b = new RetryBudget(policy);
    let progressed = 0;
    const w = waits(b, (n) => {
      if (n % 2 === 0 && progressed < 3) {
        progressed++;
        b.progressed();
      }
    });
    // 2 waits per round; rounds end with progress three times, then one more round gives up
    expect(w).toHaveLength(8);
  });

  it('is the only place that computes backoff or deadlines in the client', () => {
    const src = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src');
    const users = readdirSync(src).filter((f) => f !== 'retry.ts' && /backoffMs\(|fitsDeadline\(|retryDeadline\(/.test(readFileSync(path.join(src, f), 'utf8')));
    expect(users).toEqual([]);
  });
});
