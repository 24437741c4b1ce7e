// Enforces the buf.validate rules declared in the proto, once, for both
// servers: every request message is checked before its handler runs, and
// the first violation becomes INVALID_ARGUMENT naming the field at fault.
// The rules live in the generated descriptors, so the proto stays the one
// place they are written.
import type { DescMessage, DescService, MessageShape } from '@bufbuild/protobuf';
import { pathToString } from '@bufbuild/protobuf/reflect';
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
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

/**
 * The handlers of a service, each run only for a request that passes the
 * proto's rules; a method that takes a stream of requests checks each one as
 * the handler reads it.
 */
export function validateService<Service extends DescService>(service: Service, handlers: ServiceImpl<Service>): ServiceImpl<Service> {
  const check = createRequestValidator();
  const validated: Record<string, unknown> = {};
  for (const method of service.methods) {
    const handler = (handlers as Record<string, (request: unknown, context: HandlerContext) => unknown>)[method.localName]!;
    const streamed = method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming';
    validated[method.localName] = streamed
      ? (requests: AsyncIterable<MessageShape<DescMessage>>, context: HandlerContext) => handler(checkedEach(requests, (request) => check(method.input, request)), context)
      : (request: MessageShape<DescMessage>, context: HandlerContext) => {
          check(method.input, request);
          return handler(request, context);
        };
  }
  return validated as ServiceImpl<Service>;
}

async function* checkedEach<T>(requests: AsyncIterable<T>, check: (request: T) => void): AsyncGenerator<T> {
  for await (const request of requests) {
    check(request);
    yield request;
  }
}
