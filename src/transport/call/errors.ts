// The only place a failure becomes a status. Core errors carry stable codes;
// here each code becomes a Connect Code, whose numbers are also the gRPC
// status numbers, and whose HTTP statuses the Connect protocol defines.
// Anything unrecognised answers INTERNAL with a generic message: its own
// message may say things the caller must not learn, so it travels only as the
// ConnectError's cause, which the call log writes and no client ever sees.

import { Code, ConnectError } from '@connectrpc/connect';
import { codeToString } from '@connectrpc/connect/protocol-connect';
import { TallyError, type TallyErrorCode } from '../../core/errors.js';

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

// The one table between gRPC codes and HTTP statuses; no other exists.
//
// Code → status is the Connect protocol's (connectrpc.com/docs/protocol#error-codes),
// which is also what gRPC-to-HTTP gateways use.
const HTTP_STATUS_OF_CODE: Record<Code, number> = {
  [Code.Canceled]: 499,
  [Code.Unknown]: 500,
  [Code.InvalidArgument]: 400,
  [Code.DeadlineExceeded]: 504,
  [Code.NotFound]: 404,
  [Code.AlreadyExists]: 409,
  [Code.PermissionDenied]: 403,
  [Code.ResourceExhausted]: 429,
  [Code.FailedPrecondition]: 400,
  [Code.Aborted]: 409,
  [Code.OutOfRange]: 400,
  [Code.Unimplemented]: 501,
  [Code.Internal]: 500,
  [Code.Unavailable]: 503,
  [Code.DataLoss]: 500,
  [Code.Unauthenticated]: 401,
};

// Status → code reads an answer Tally (or connect-node on its behalf) wrote
// without a grpc-status, for the log line and the metrics: what it stood for.
// It is the inverse of the table above; where several codes share a status,
// the one Tally's own answers mean (400: a bad request; 409: a lost race;
// 500: a bug). It differs from the mapping gRPC clients apply to a foreign
// proxy's answer (grpc's doc/http-grpc-status-mapping.md, the Connect spec's
// "HTTP to error code") only where Tally wrote the status itself with a
// meaning: 400 is InvalidArgument (not Internal), 429 ResourceExhausted and
// 504 DeadlineExceeded (not Unavailable). The rest are statuses Tally and
// connect-node write that the table above never produces or means otherwise:
// 404 for an unknown procedure or path (Unimplemented, as grpc maps it; Tally
// never answers NotFound), 405 for a method a path does
// not take, 408 for a request not read in time, 413 for a body too large,
// 415 for a body of the wrong type, 502 as grpc maps it.
const SHARED_STATUS_MEANS: Readonly<Record<number, Code>> = {
  400: Code.InvalidArgument,
  409: Code.Aborted,
  500: Code.Internal,
};
const STATUS_OUTSIDE_TABLE: Readonly<Record<number, Code>> = {
  404: Code.Unimplemented,
  405: Code.Unimplemented,
  408: Code.DeadlineExceeded,
  413: Code.ResourceExhausted,
  415: Code.InvalidArgument,
  502: Code.Unavailable,
};
const CODE_OF_HTTP_STATUS: ReadonlyMap<number, Code> = (() => {
  const byStatus = new Map<number, Code[]>();
  for (const [code, status] of Object.entries(HTTP_STATUS_OF_CODE)) {
    byStatus.set(status, [...(byStatus.get(status) ?? []), Number(code) as Code]);
  }
  const table = new Map<number, Code>();
  for (const [status, codes] of byStatus) table.set(status, codes.length === 1 ? codes[0]! : SHARED_STATUS_MEANS[status]!);
  for (const [status, code] of Object.entries(STATUS_OUTSIDE_TABLE)) table.set(Number(status), code);
  return table;
})();

/** The HTTP status for a code, as the Connect protocol maps it; for plain HTTP endpoints. */
export function httpStatusOf(code: Code): number {
  return HTTP_STATUS_OF_CODE[code];
}

/** The code an HTTP answer stands for: 0 below 300, the table above for errors, INTERNAL for any other status. */
export function codeOfHttpStatus(status: number): Code | 0 {
  if (status < 300) return 0;
  return CODE_OF_HTTP_STATUS.get(status) ?? Code.Internal;
}

/** `invalid_argument`, `unavailable`...: how codes are written in logs. */
export function codeName(code: Code | 0): string {
  return code === 0 ? 'ok' : codeToString(code);
}
