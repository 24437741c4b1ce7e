import { Code, ConnectError } from '@connectrpc/connect';
import { describe, expect, it } from 'vitest';
import {
  FailedPreconditionError,
  InvalidArgumentError,
  KeyRingError,
  PermissionDeniedError,
  ResourceExhaustedError,
  StoreUnavailableError,
  UnauthenticatedError,
} from '../../src/core/errors.js';
import { codeToHttpStatus } from '@connectrpc/connect/protocol-connect';
import { codeOfHttpStatus, httpStatusOf, toConnectError } from '../../src/transport/call/errors.js';

describe('toConnectError: the one place a failure becomes a status', () => {
  it.each([
    { error: new InvalidArgumentError('ttl', 'must be at least 1s'), code: Code.InvalidArgument, http: 400, message: 'ttl: must be at least 1s' },
    { error: new StoreUnavailableError(), code: Code.Unavailable, http: 503 },
    { error: new KeyRingError('the key ring is not loaded yet'), code: Code.Unavailable, http: 503 },
    { error: new UnauthenticatedError(), code: Code.Unauthenticated, http: 401, message: 'a valid caller credential is required' },
    { error: new PermissionDeniedError('the caller may not issue'), code: Code.PermissionDenied, http: 403, message: 'the caller may not issue' },
    { error: new ResourceExhaustedError('slow down'), code: Code.ResourceExhausted, http: 429, message: 'slow down' },
    { error: new FailedPreconditionError('algorithm: ML-DSA-87 has no active signing key'), code: Code.FailedPrecondition, http: 400, message: 'algorithm: ML-DSA-87 has no active signing key' },
  ])('$error.code becomes $code (HTTP $http)', ({ error, code, http, message }) => {
    const mapped = toConnectError(error);
    expect(mapped.code).toBe(code);
    expect(httpStatusOf(mapped.code)).toBe(http);
    if (message !== undefined) expect(mapped.rawMessage).toBe(message);
    expect(mapped.cause).toBe(error);
  });

  it('hides what the store said behind a fixed message, keeping it as the cause for the log', () => {
    const cause = new Error('connect ECONNREFUSED 10.0.0.7:6379');
    const mapped = toConnectError(new StoreUnavailableError('the token store is unavailable', { cause }));
    expect(mapped.rawMessage).not.toContain('10.0.0.7');
  });

  it('answers an unknown error as INTERNAL with a generic message; its own message stays in the cause', () => {
    const secretish = new TypeError('cannot read token tly_abc123 of undefined');
    const mapped = toConnectError(secretish);
    expect(mapped.code).toBe(Code.Internal);
    expect(mapped.rawMessage).toBe('internal error');
    expect(mapped.cause).toBe(secretish);
  });

  it('passes a ConnectError through unchanged', () => {
    const error = new ConnectError('the deadline was exceeded', Code.DeadlineExceeded);
    expect(toConnectError(error)).toBe(error);
  });
});

describe('the one table between gRPC codes and HTTP statuses', () => {
  // Written out from the Connect protocol spec (connectrpc.com/docs/protocol#error-codes), not read from the code.
  const CONNECT_SPEC: Array<[Code, number]> = [
    [Code.Canceled, 499], [Code.Unknown, 500], [Code.InvalidArgument, 400], [Code.DeadlineExceeded, 504],
    [Code.NotFound, 404], [Code.AlreadyExists, 409], [Code.PermissionDenied, 403], [Code.ResourceExhausted, 429],
    [Code.FailedPrecondition, 400], [Code.Aborted, 409], [Code.OutOfRange, 400], [Code.Unimplemented, 501],
    [Code.Internal, 500], [Code.Unavailable, 503], [Code.DataLoss, 500], [Code.Unauthenticated, 401],
  ];

  it('gives every gRPC code the HTTP status the Connect spec names, as connect-node itself does', () => {
    expect(CONNECT_SPEC).toHaveLength(16);
    for (const [code, status] of CONNECT_SPEC) {
      expect(httpStatusOf(code), Code[code]).toBe(status);
      expect(httpStatusOf(code), Code[code]).toBe(codeToHttpStatus(code));
    }
  });

  it('reads every status back to a code that writes the same status, and to the code itself where no other shares it', () => {
    for (const [code, status] of CONNECT_SPEC) {
      // Tally never answers NOT_FOUND; a 404 is a path or procedure it does not serve, read as grpc maps it.
      if (status === 404) continue;
      const back = codeOfHttpStatus(status);
      expect(back, `${status}`).not.toBe(0);
      expect(httpStatusOf(back as Code), `${Code[code]} → ${status} → ${Code[back]}`).toBe(status);
      const shared = CONNECT_SPEC.filter(([, other]) => other === status).length > 1;
      if (!shared) expect(back, `${Code[code]} → ${status}`).toBe(code);
    }
  });

  it('reads a status shared by several codes as the one Tally\'s own answers mean', () => {
    expect(codeOfHttpStatus(400)).toBe(Code.InvalidArgument);
    expect(codeOfHttpStatus(409)).toBe(Code.Aborted);
    expect(codeOfHttpStatus(500)).toBe(Code.Internal);
  });

  it('agrees with grpc\'s HTTP-to-gRPC mapping for the statuses a server only ever means one way', () => {
    // grpc doc/http-grpc-status-mapping.md; 400, 429 and 504 are read as what Tally meant by writing them.
    expect(codeOfHttpStatus(401)).toBe(Code.Unauthenticated);
    expect(codeOfHttpStatus(403)).toBe(Code.PermissionDenied);
    expect(codeOfHttpStatus(404)).toBe(Code.Unimplemented);
    expect(codeOfHttpStatus(502)).toBe(Code.Unavailable);
    expect(codeOfHttpStatus(503)).toBe(Code.Unavailable);
  });

  it('reads the statuses Tally and connect-node write outside the Connect table, one way on every port', () => {
    expect(codeOfHttpStatus(405)).toBe(Code.Unimplemented);
    expect(codeOfHttpStatus(408)).toBe(Code.DeadlineExceeded);
    expect(codeOfHttpStatus(413)).toBe(Code.ResourceExhausted);
    expect(codeOfHttpStatus(415)).toBe(Code.InvalidArgument);
    expect(codeOfHttpStatus(429)).toBe(Code.ResourceExhausted);
    expect(codeOfHttpStatus(499)).toBe(Code.Canceled);
    expect(codeOfHttpStatus(504)).toBe(Code.DeadlineExceeded);
  });

  it('answers ok below 300 and INTERNAL for a status it has no meaning for', () => {
    expect(codeOfHttpStatus(200)).toBe(0);
    expect(codeOfHttpStatus(204)).toBe(0);
    expect(codeOfHttpStatus(418)).toBe(Code.Internal);
    expect(codeOfHttpStatus(507)).toBe(Code.Internal);
  });
});
