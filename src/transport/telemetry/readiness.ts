// One answer to "should traffic come here?", shared by gRPC health and
// /readyz: serving only while the store answered its last ping, the key ring
// is loaded, and the process is not draining. Pings run on a timer rather
// than per probe, so a storm of probes never becomes a storm of store calls.

import type { Logger } from '../../log.js';

export interface ReadinessOptions {
  /** Resolves when the store answers. */
  ping: () => Promise<void>;
  keyRingLoaded: () => boolean;
  intervalMs: number;
  /** A ping slower than this counts as a failure. */
  pingTimeoutMs: number;
  logger: Logger;
}

export interface Readiness {
  serving(): boolean;
  /** Called with every change of serving(); returns the unsubscribe function. */
  onChange(listener: (serving: boolean) => void): () => void;
  /** Pings now and then every interval. Resolves after the first ping. */
  start(): Promise<void>;
  /** Not serving from now on, whatever the store says: the process is shutting down. */
  drain(): void;
  draining(): boolean;
  stop(): void;
}

export function createReadiness(options: ReadinessOptions): Readiness {
  let storeAnswers = false;
  let isDraining = false;
  let timer: NodeJS.Timeout | undefined;
  let lastServing = false;
  const listeners = new Set<(serving: boolean) => void>();

  const serving = () => !isDraining && storeAnswers && options.keyRingLoaded();

  function publish(): void {
    const now = serving();
    if (now === lastServing) return;
    lastServing = now;
    options.logger.info({ serving: now, store_answers: storeAnswers, draining: isDraining }, 'readiness changed');
    for (const listener of listeners) listener(now);
  }

  async function probe(): Promise<void> {
    let timeout: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        options.ping(),
        new Promise<never>((_resolve, reject) => {
          timeout = setTimeout(() => reject(new Error('the store did not answer a ping in time')), options.pingTimeoutMs);
        }),
      ]);
      if (!storeAnswers) options.logger.info('the store answers');
      storeAnswers = true;
    } catch (error) {
      if (storeAnswers) options.logger.warn({ err: error }, 'the store stopped answering');
      storeAnswers = false;
    } finally {
      clearTimeout(timeout);
    }
    publish();
  }

  function schedule(): void {
    timer = setTimeout(() => {
      void probe().finally(() => {
        if (timer !== undefined) schedule();
      });
    }, options.intervalMs);
    // A pending probe must not keep a finished process alive.
    timer.unref();
  }

  return {
    serving,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async start() {
      await probe();
      schedule();
    },
    drain() {
      isDraining = true;
      publish();
    },
    draining: () => isDraining,
    stop() {
      clearTimeout(timer);
      timer = undefined;
    },
  };
}
