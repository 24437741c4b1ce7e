// A call whose deadline passed or whose client went away should stop holding
// its handler. The core calls are short and cannot be interrupted halfway, so
// the handler stops waiting instead: a started write still completes (that is
// what a gRPC deadline means: the outcome is unknown to the caller).

import { Code, ConnectError, createContextKey, type HandlerContext } from '@connectrpc/connect';
import { isPromise, type Awaitable } from '../../core/awaitable.js';

/**
 * Set by a transport that answers a cancelled call itself without waiting
 * for its handler (the gRPC adapter): racing the handler against the abort
 * signal would only cost an AbortController and two listeners per call.
 */
export const cancelAnsweredByTransportKey = createContextKey(false, { description: 'the transport answers a cancelled call itself' });

function abortError(signal: AbortSignal): ConnectError {
  return signal.reason instanceof ConnectError ? signal.reason : new ConnectError('the call was cancelled', Code.Canceled);
}

/**
 * Starts the work unless the call is already over, and stops waiting for it
 * when the call ends. Work that answers at once is answered at once.
 */
export function stopWaitingWhenCancelled<T>(context: HandlerContext, start: () => Awaitable<T>): Awaitable<T> {
  if (context.values.get(cancelAnsweredByTransportKey)) return start();
  const { signal } = context;
  if (signal.aborted) throw abortError(signal);
  const work = start();
  return isPromise(work) ? raceAbort(work, signal) : work;
}

async function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([work, aborted]);
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
    // Nobody may see a late failure; keep it from becoming an unhandled rejection.
    work.catch(() => {});
    aborted.catch(() => {});
  }
}
