// The only place a failure becomes a status. Core errors carry stable codes;
// here each code becomes a Connect Code, whose numbers are also the gRPC
// status numbers, and whose HTTP statuses the Connect protocol defines.
// Anything unrecognised answers INTERNAL with a generic message: its own
// message may say things the caller must not learn, so it travels only as the
// ConnectError's cause, which the call log writes and no client ever sees.

import { Code, ConnectError } from '@connectrpc/connect';
import { codeToHttpStatus, codeToString } from '@connectrpc/connect/protocol-connect';
import { TallyError, type TallyErrorCode } from '../core/errors.js';

const CODE_OF: Record<TallyErrorCode, Code> = {
  ERR_INVALID_ARGUMENT: Code.InvalidArgument,
  ERR_STORE_UNAVAILABLE: Code.Unavailable,
  // Not loaded yet, or not readable: this replica cannot sign or verify now,
  // another may, and a retry may succeed; that is UNAVAILABLE, not a bug.
  ERR_KEY_RING: Code.Unavailable,
  ERR_UNAUTHENTICATED: Code.Unauthenticated,
  ERR_PERMISSION_DENIED: Code.PermissionDenied,
  ERR_RESOURCE_EXHAUSTED: Code.ResourceExhausted,
  ERR_FAILED_PRECONDITION: Code.FailedPrecondition,
};

/** Core messages that are safe and useful to pass on as they are. */
const PASSES_MESSAGE: ReadonlySet<TallyErrorCode> = new Set([
  'ERR_INVALID_ARGUMENT',
  'ERR_UNAUTHENTICATED',
  'ERR_PERMISSION_DENIED',
  'ERR_RESOURCE_EXHAUSTED',
  'ERR_FAILED_PRECONDITION',
]);

const GENERIC_MESSAGE: Partial<Record<Code, string>> = {
  [Code.Unavailable]: 'the service is unavailable; retry with backoff',
  [Code.Internal]: 'internal error',
};

export function toConnectError(error: unknown): ConnectError {
  if (error instanceof ConnectError) return error;
  if (error instanceof TallyError) {
    const code = CODE_OF[error.code];
    const message = PASSES_MESSAGE.has(error.code) ? error.message : (GENERIC_MESSAGE[code] ?? 'internal error');
    return new ConnectError(message, code, undefined, undefined, error);
  }
  return new ConnectError('internal error', Code.Internal, undefined, undefined, error);
}

/** Whether the failure is ours rather than the caller's: logged at error level, with its cause. */
export function isServerFault(error: ConnectError): boolean {
  return error.code === Code.Internal || error.code === Code.Unknown || error.code === Code.DataLoss;
}

/** The HTTP status for a code, as the Connect protocol maps it; for plain HTTP endpoints. */
export function httpStatusOf(code: Code): number {
  return codeToHttpStatus(code);
}

/** `invalid_argument`, `unavailable`...: how codes are written in logs. */
export function codeName(code: Code | 0): string {
  return code === 0 ? 'ok' : codeToString(code);
}
