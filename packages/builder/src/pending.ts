/**
 * Work a step starts on the side, off its critical path (removing a runtime bundle, closing a
 * network namespace), that must still end before the step does: nothing is left behind, also
 * when the step fails. A failure is kept (never an unhandled rejection) and reported by settle.
 */
export class Pending {
  private readonly work: Array<Promise<unknown>> = [];

  /** Take `p` in; it runs on, and settle waits for it. */
  readonly add = (p: Promise<unknown>): void => {
    p.catch(() => undefined);
    this.work.push(p);
  };

  /** How many pieces of work were taken in (for tests). */
  get size(): number {
    return this.work.length;
  }

  /** Wait for all of it; the first failure (in the order taken in) is thrown. */
  async settle(): Promise<void> {
    const results = await Promise.allSettled(this.work);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
}

/** Run `fn`, then wait for what it left pending, whatever happened; `fn`'s own error wins. */
export async function withPending<T>(fn: (pending: Pending) => Promise<T>): Promise<T> {
  const pending = new Pending();
  let result: T;
  try {
    result = await fn(pending);
  } catch (e) {
    await pending.settle().catch(() => undefined);
    throw e;
  }
  await pending.settle();
  return result;
}
