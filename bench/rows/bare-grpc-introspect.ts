import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { IntrospectRequestSchema, IntrospectResponseSchema } from '../../src/gen/tally/v1/token_service_pb.js';
import { introspectPath, placeholderOpaqueToken } from '../lib/fixtures.js';
import { measureGrpcUnary } from '../lib/measure-grpc-unary.js';
import type { Row } from '../lib/row.js';

export const bareGrpcIntrospect: Row = {
  name: 'bare grpc-js, no-op Introspect',
  description: 'the ceiling: a @grpc/grpc-js server answering a fixed, pre-encoded IntrospectResponse',
  async measure(context) {
    const server = await context.bareGrpcServer();
    return measureGrpcUnary(context, {
      slug: 'bare-grpc-introspect',
      address: server.grpcAddress,
      path: introspectPath,
      request: toBinary(IntrospectRequestSchema, create(IntrospectRequestSchema, { token: placeholderOpaqueToken })),
      checkAnswer: (message) => {
        if (!fromBinary(IntrospectResponseSchema, message).active) throw new Error('the bare server answered active: false');
      },
      server: server.process,
    });
  },
};
