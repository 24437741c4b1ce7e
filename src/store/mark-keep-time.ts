/**
 * A mark kept for no time at all would un-revoke tokens at once; that is a
 * bug in the caller, not an outage, so it is not a StoreUnavailableError.
 */
export function checkMarkKeepTime(keepForMs: number): void {
  if (!Number.isFinite(keepForMs) || keepForMs < 1) {
    throw new RangeError(`keepForMs must be a positive number of milliseconds, got ${keepForMs}`);
  }
}
