// A value now, or later. The hot path (an Introspect this process can answer
// from memory) passes plain values from the store's local view to the
// encoded answer, so it never waits a microtask; everything that may need a
// round trip returns a promise as usual.

export type Awaitable<T> = T | Promise<T>;

export function isPromise<T>(value: Awaitable<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function';
}

/** then() for an Awaitable: synchronous when the value is already here. */
export function whenReady<T, U>(value: Awaitable<T>, next: (value: T) => Awaitable<U>): Awaitable<U> {
  return isPromise(value) ? value.then(next) : next(value);
}
