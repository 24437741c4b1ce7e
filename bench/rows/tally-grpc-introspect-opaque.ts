import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { IntrospectRequestSchema, IntrospectResponseSchema } from '../../src/gen/tally/v1/token_service_pb.js';
import { benchIssueRequest, introspectPath } from '../lib/fixtures.js';
import { measureGrpcUnary } from '../lib/measure-grpc-unary.js';
import type { Row } from '../lib/row.js';

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
    });
  },
};
