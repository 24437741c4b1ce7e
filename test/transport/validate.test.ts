// The shortcut that spares protovalidate on the hottest path may only ever
// say "certainly valid" where protovalidate says valid: held to it over
// random messages, astral characters and bounds included.
import { create } from '@bufbuild/protobuf';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createValidator } from '@bufbuild/protovalidate';
import { IntrospectRequestSchema, IssueRequestSchema, RevokeRequestSchema } from '../../src/gen/tally/v1/token_service_pb.js';
import { certainlyValid, createRequestValidator } from '../../src/transport/call/validate.js';

const text = (maxLength: number) =>
  fc.oneof(
    fc.string({ maxLength }),
    fc.string({ unit: 'grapheme', maxLength }),
    // Around the bounds, in one-unit and two-unit (astral) characters.
    fc.integer({ min: 0, max: 3 }).chain((extra) => fc.constantFrom('x', '😀').map((unit) => unit.repeat(maxLength + extra - 2))),
  );

describe('certainlyValid', () => {
  const vouch = certainlyValid(IntrospectRequestSchema)!;
  const protovalidate = createValidator();

  it('vouches for IntrospectRequest, whose rules are length bounds only', () => {
    expect(vouch).toBeTypeOf('function');
  });

  it('never vouches for an IntrospectRequest protovalidate refuses, and vouches for the common one', () => {
    fc.assert(
      fc.property(text(65_536), text(256), fc.array(text(128), { maxLength: 66 }), (token, audience, requiredScopes) => {
        const message = create(IntrospectRequestSchema, { token, audience, requiredScopes });
        if (vouch(message)) expect(protovalidate.validate(IntrospectRequestSchema, message).kind).toBe('valid');
      }),
      { numRuns: 1_000 },
    );
    expect(vouch(create(IntrospectRequestSchema, { token: 'tly_abc' }))).toBe(true);
    expect(vouch(create(IntrospectRequestSchema, { token: '' }))).toBe(false);
  });

  it('does not vouch for messages with other rules (Issue, Revoke)', () => {
    expect(certainlyValid(IssueRequestSchema)).toBeUndefined();
    expect(certainlyValid(RevokeRequestSchema)).toBeUndefined();
  });

  it('leaves the verdict and its message to protovalidate when it cannot vouch', () => {
    const check = createRequestValidator();
    expect(() => check(IntrospectRequestSchema, create(IntrospectRequestSchema, { token: '' }))).toThrow('token: value is required');
    // 65,536 code points in 131,072 UTF-16 units: too long by units, valid by the rule.
    expect(() => check(IntrospectRequestSchema, create(IntrospectRequestSchema, { token: '😀'.repeat(65_536) }))).not.toThrow();
    expect(() => check(IntrospectRequestSchema, create(IntrospectRequestSchema, { token: '😀'.repeat(65_537) }))).toThrow('token: must be at most 65536 characters');
  });
});
