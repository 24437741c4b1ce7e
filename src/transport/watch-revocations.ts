// WatchRevocations and AcknowledgeRevocations on both ports: the proto ⇄ core
// mapping of core/revocation-watch.ts. The guard has checked the caller (the
// `introspect` permission); its name and audiences decide what it hears and
// which lease it may renew. On the gRPC port grpc/server-streaming.ts runs
// the stream; on the HTTP port connect-node does (Connect and gRPC-Web).
import { Code, ConnectError, type ServiceImpl } from '@connectrpc/connect';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { durationFromMs, timestampFromMs } from '@bufbuild/protobuf/wkt';
import type { RevocationWatch, ViewHolder, WatchMessage } from '../core/revocation-watch.js';
import type { MarkScope } from '../core/types.js';
import type { TokenService, WatchRevocationsResponseSchema } from '../gen/tally/v1/token_service_pb.js';
import { stopWaitingWhenCancelled } from './abort.js';
import { callerOf } from './guard.js';

type WatchHandlers = Pick<ServiceImpl<typeof TokenService>, 'watchRevocations' | 'acknowledgeRevocations'>;

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

export function createWatchRevocationsHandlers(watch: RevocationWatch | undefined): WatchHandlers {
  return {
    async *watchRevocations(_request, context) {
      if (watch === undefined) throw unimplemented();
      const caller = callerOf(context.values);
      const holder = caller === undefined ? UNGUARDED : { name: caller.name, audiences: caller.audiences };
      for await (const message of watch.watch(holder, context.signal)) yield toProto(message);
    },

    async acknowledgeRevocations(request, context) {
      if (watch === undefined) throw unimplemented();
      const caller = callerOf(context.values);
      const holder = caller === undefined ? UNGUARDED : { name: caller.name, audiences: caller.audiences };
      // Past 2^53 the number is not exact, and the core refuses it as no sequence Tally hands out.
      const held = await stopWaitingWhenCancelled(context, () => watch.acknowledge(holder, request.watchId, Number(request.sequence), request.release));
      return { held };
    },
  };
}
