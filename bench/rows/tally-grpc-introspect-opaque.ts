import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { IntrospectRequestSchema, IntrospectResponseSchema } from '../../src/gen/tally/v1/token_service_pb.js';
import { benchIssueRequest, introspectPath } from '../lib/fixtures.js';
import { measureGrpcUnary } from '../lib/measure-grpc-unary.js';
import type { Row } from '../lib/row.js';
import { summarizeCallLog } from '../lib/tally-call-log.js';

export const tallyGrpcIntrospectOpaque: Row = {
  name: 'Tally gRPC Introspect, opaque, no cache',
  description: 'an opaque token minted by Issue, introspected over gRPC; TALLY_CACHE_SIZE=0, so every call reads Redis',
  async measure(context) {
    const [tally, issued] = await Promise.all([context.tally(), context.opaqueToken()]);
    const expected = benchIssueRequest();
    return measureGrpcUnary(context, {
      slug: 'tally-grpc-introspect-opaque',
      address: tally.grpcAddress,
      path: introspectPath,
      request: toBinary(IntrospectRequestSchema, create(IntrospectRequestSchema, { token: issued.token })),
      checkAnswer: (message) => {
        const answer = fromBinary(IntrospectResponseSchema, message);
        if (!answer.active) throw new Error('Tally answered active: false for the token it just issued');
        if (answer.subject !== expected.subject || answer.tokenId !== issued.tokenId) {
          throw new Error(`Tally's answer names subject ${answer.subject} and token ${answer.tokenId}, not ${expected.subject} and ${issued.tokenId}`);
        }
      },
      server: tally.process,
      afterLoad: async (load) => {
        const log = await summarizeCallLog(tally.process.logPath, 'TokenService/Introspect');
        if (log === undefined) return "Tally's call log had no Introspect lines to cross-check";
        // h2load resets the streams still in flight when each of its runs ends; those
        // calls are logged as canceled, at most one per stream slot per run.
        const { canceled = 0, ...failures } = log.failures;
        const inFlightLimit = 2 * context.settings.connections * context.settings.streamsPerConnection;
        if (Object.keys(failures).length > 0 || Object.keys(log.inactive).length > 0 || canceled > inFlightLimit) {
          throw new Error(`Tally's call log shows failed or inactive Introspect calls: ${JSON.stringify(log)}`);
        }
        if (log.calls < load.statusCodes['2xx']) {
          throw new Error(`Tally logged ${log.calls} Introspect calls, fewer than the ${load.statusCodes['2xx']} answers h2load counted`);
        }
        return `Tally's call log: ${log.calls} Introspect calls (warm-up included), all ok and active but ${canceled} canceled by h2load stopping`;
      },
    });
  },
};
