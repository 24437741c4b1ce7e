import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Retries `attempt` until it resolves, or rethrows its last failure once
 * `withinMs` has passed. For waiting on recovery without a fixed sleep.
 */
export async function eventually<T>(attempt: () => Promise<T>, withinMs: number, everyMs = 25): Promise<T> {
  const deadline = performance.now() + withinMs;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (performance.now() > deadline) throw error;
      await sleep(everyMs);
    }
  }
}

/** How long `operation` took to settle, and how it settled. */
export async function timed<T>(
  operation: () => Promise<T>,
): Promise<{ elapsedMs: number; result: PromiseSettledResult<T> }> {
  const start = performance.now();
  const [result] = await Promise.allSettled([operation()]);
  return { elapsedMs: performance.now() - start, result: result as PromiseSettledResult<T> };
}
