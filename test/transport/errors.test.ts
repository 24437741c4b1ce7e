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
import { httpStatusOf, toConnectError } from '../../src/transport/errors.js';

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
