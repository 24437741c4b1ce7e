// Enforces the buf.validate rules declared in the proto, once, for both
// servers: every request message is checked before its handler runs (step 4
// of pipeline.ts), and the first violation becomes INVALID_ARGUMENT naming
// the field at fault.
// The rules live in the generated descriptors, so the proto stays the one
// place they are written.
import type { DescMessage, MessageShape } from '@bufbuild/protobuf';
import { pathToString } from '@bufbuild/protobuf/reflect';
import { createValidator, type Validator, type Violation } from '@bufbuild/protovalidate';
import { InvalidArgumentError } from '../core/errors.js';

/** `audience[3]`, `ttl`, `target`: the field as callers write it in proto snake_case. */
function fieldOf(violation: Violation): string {
  const path = pathToString(violation.field);
  return path === '' ? 'request' : path;
}

export function createRequestValidator(): (schema: DescMessage, message: MessageShape<DescMessage>) => void {
  // failFast: one violation names the field; finding the others costs time a hostile caller chooses.
  const validator: Validator = createValidator({ failFast: true });
  return (schema, message) => {
    const result = validator.validate(schema, message);
    if (result.kind === 'valid') return;
    if (result.kind === 'invalid') {
      const violation = result.violations[0]!;
      throw new InvalidArgumentError(fieldOf(violation), violation.message);
    }
    // A rule that cannot compile or run is our bug, not the caller's: it answers INTERNAL.
    throw result.error;
  };
}
