import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { durationToMs, revokeTargetFromProto } from '../../src/transport/service.js';

describe('durationToMs: google.protobuf.Duration to a lifetime in milliseconds', () => {
  it.each([
    { seconds: 0n, nanos: 0, ms: 0 },
    { seconds: 90n, nanos: 0, ms: 90_000 },
    { seconds: 1n, nanos: 500_000_000, ms: 1_500 },
    { seconds: 0n, nanos: 999_999, ms: 0 },
  ])('$seconds s + $nanos ns is $ms ms', ({ seconds, nanos, ms }) => {
    expect(durationToMs({ seconds, nanos } as never, 'ttl')).toBe(ms);
  });

  it.each([
    { name: 'negative seconds', seconds: -1n, nanos: 0 },
    { name: 'negative nanos', seconds: 0n, nanos: -1 },
    { name: 'nanos of a second or more', seconds: 0n, nanos: 1_000_000_000 },
    { name: 'more seconds than any lifetime', seconds: 2n ** 63n - 1n, nanos: 0 },
  ])('refuses $name as INVALID_ARGUMENT on the field', ({ seconds, nanos }) => {
    const attempt = () => durationToMs({ seconds, nanos } as never, 'ttl');
    expect(attempt).toThrow(InvalidArgumentError);
    expect(attempt).toThrow(/^ttl: /);
  });
});

describe('revokeTargetFromProto: the RevokeRequest oneof to a core target', () => {
  it.each([
    { target: { case: 'token', value: 't' }, expected: { kind: 'token', token: 't' } },
    { target: { case: 'tokenId', value: 'id' }, expected: { kind: 'tokenId', tokenId: 'id' } },
    { target: { case: 'subject', value: 's' }, expected: { kind: 'subject', value: 's' } },
    { target: { case: 'clientId', value: 'c' }, expected: { kind: 'client', value: 'c' } },
    { target: { case: 'sessionId', value: 'x' }, expected: { kind: 'session', value: 'x' } },
  ] as const)('$target.case', ({ target, expected }) => {
    expect(revokeTargetFromProto(target)).toEqual(expected);
  });

  it('refuses a request with no target, naming "target"', () => {
    expect(() => revokeTargetFromProto({ case: undefined })).toThrow(/^target: /);
  });

  it('refuses an empty value, naming the proto field', () => {
    expect(() => revokeTargetFromProto({ case: 'clientId', value: '' })).toThrow(/^client_id: /);
  });
});
