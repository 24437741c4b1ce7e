// WatchRevocations, AcknowledgeRevocations and FollowRevocations: the proto ⇄
// core mapping of core/revocation-watch.ts. The guard has checked the caller
// (the `introspect` permission); its name and audiences decide what it hears
// and which lease it may renew. On the gRPC port grpc/streaming.ts runs the
// streams; on the HTTP port connect-node does (Connect and gRPC-Web), all but
// FollowRevocations, which needs HTTP/2.
//
// Two ways to acknowledge, because clients differ: over HTTP/1.1 (Connect,
// gRPC-Web) a client cannot send on a stream while it reads one, so it
// watches with WatchRevocations and acknowledges with a unary call each; over
// HTTP/2 (tally/client) FollowRevocations carries both on one stream, and an
// acknowledgement costs a message, not a call (measured: about 180 µs of
// Tally's CPU and 260 µs of the client's for a unary one; docs/benchmarks.md).
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from '@connectrpc/connect';
import { createWritableIterable } from '@connectrpc/connect/protocol';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { durationFromMs, timestampFromMs } from '@bufbuild/protobuf/wkt';
import type { RevocationWatch, ViewHolder, WatchMessage } from '../core/revocation-watch.js';
import type { MarkScope } from '../core/types.js';
import type { FollowRevocationsResponseSchema, TokenService, WatchRevocationsResponseSchema } from '../gen/tally/v1/token_service_pb.js';
import { stopWaitingWhenCancelled } from './call/abort.js';
import { callOf } from './call/pipeline.js';

type WatchHandlers = Pick<ServiceImpl<typeof TokenService>, 'watchRevocations' | 'acknowledgeRevocations' | 'followRevocations'>;

/** A server with no callers configured and no guard (tests) serves one anonymous holder. */
const UNGUARDED: ViewHolder = { name: 'anonymous' };

const SCOPE_FIELDS = {
  token: 'tokenId',
  subject: 'subject',
  client: 'clientId',
  session: 'sessionId',
  key: 'kid',
} as const satisfies Record<MarkScope, string>;

function toProto(message: WatchMessage): MessageInitShape<typeof WatchRevocationsResponseSchema> {
  const sequence = BigInt(message.sequence);
  switch (message.kind) {
    case 'started':
      return {
        sequence,
        event: {
          case: 'started',
          value: { watchId: message.watchId, lease: durationFromMs(message.leaseMs), catchUpTo: BigInt(message.catchUpTo), storeTime: timestampFromMs(message.storeTime) },
        },
      };
    case 'revoked':
      return {
        sequence,
        event: {
          case: 'revoked',
          value: message.scope === undefined ? {} : { scope: { case: SCOPE_FIELDS[message.scope], value: message.value ?? '' } },
        },
      };
    case 'keys':
      return { sequence, event: { case: 'keysChanged', value: {} } };
    case 'progress':
      return { sequence };
  }
}

function unimplemented(): ConnectError {
  return new ConnectError('this server does not serve revocation watches', Code.Unimplemented);
}

function holderOf(context: HandlerContext): ViewHolder {
  const caller = callOf(context.values)?.caller;
  return caller === undefined ? UNGUARDED : { name: caller.name, audiences: caller.audiences };
}

export function createWatchRevocationsHandlers(watch: RevocationWatch | undefined): WatchHandlers {
  return {
    async *watchRevocations(_request, context) {
      if (watch === undefined) throw unimplemented();
      for await (const message of watch.watch(holderOf(context), context.signal)) yield toProto(message);
    },

    async acknowledgeRevocations(request, context) {
      if (watch === undefined) throw unimplemented();
      const holder = holderOf(context);
      // Past 2^53 the number is not exact, and the core refuses it as no sequence Tally hands out.
      const held = await stopWaitingWhenCancelled(context, () => watch.acknowledge(holder, request.watchId, Number(request.sequence), request.release));
      return { held };
    },

    followRevocations(requests, context) {
      if (watch === undefined) throw unimplemented();
      return follow(watch, holderOf(context), requests, context.signal);
    },
  };
}

type FollowResponse = MessageInitShape<typeof FollowRevocationsResponseSchema>;

/**
 * One FollowRevocations stream: the watch's messages, and the answer to each
 * acknowledgement in the order they came, merged onto the one response
 * stream. The watch ends when the client closes its side (or releases), and
 * with the first failure of either half.
 */
async function* follow(
  watch: RevocationWatch,
  holder: ViewHolder,
  requests: AsyncIterable<{ sequence: bigint; release: boolean }>,
  callSignal: AbortSignal,
): AsyncGenerator<FollowResponse> {
  const responses = createWritableIterable<FollowResponse>();
  const over = new AbortController();
  const signal = AbortSignal.any([callSignal, over.signal]);
  let failure: unknown;
  let watchId: string | undefined;
  let started!: () => void;
  const hasStarted = new Promise<void>((resolve) => (started = resolve));
  const ended = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  const fail = (error: unknown) => {
    failure ??= error;
    over.abort();
  };

  const telling = (async () => {
    for await (const message of watch.watch(holder, signal)) {
      if (message.kind === 'started') {
        watchId = message.watchId;
        started();
      }
      await responses.write({ message: { case: 'watch', value: toProto(message) } });
    }
  })().catch(fail);
  const hearing = (async () => {
    for await (const request of requests) {
      // Acknowledgements come after `started`; one sent sooner waits for it, or for the end.
      await Promise.race([hasStarted, ended]);
      if (watchId === undefined) return;
      const held = await watch.acknowledge(holder, watchId, Number(request.sequence), request.release);
      await responses.write({ message: { case: 'renewed', value: { held } } });
      if (request.release) break;
    }
    // The client closed its side, or released its lease: the watch is over.
    over.abort();
  })().catch(fail);
  void Promise.all([telling, hearing]).finally(() => responses.close());

  try {
    for await (const response of responses) yield response;
  } finally {
    over.abort();
    responses.close();
  }
  if (failure !== undefined) throw failure;
}
