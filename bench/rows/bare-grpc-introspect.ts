import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { IntrospectRequestSchema, IntrospectResponseSchema } from '../../src/gen/tally/v1/token_service_pb.js';
import { introspectPath, placeholderOpaqueToken } from '../lib/fixtures.js';
import { measureGrpcUnary, type GrpcUnaryCall } from '../lib/measure-grpc-unary.js';
import type { BareGrpcTarget } from '../targets/bare-grpc.js';
import type { BenchContext } from '../lib/context.js';
import type { Measurement, Row } from '../lib/row.js';

export const bareGrpcIntrospect: Row = {
  name: 'bare grpc-js, no-op Introspect',
  description: 'the ceiling: a @grpc/grpc-js server answering a fixed, pre-encoded IntrospectResponse',
  measure: (context) => measureBareGrpcIntrospect(context, 'bare-grpc-introspect'),
};

/** The bare server under h2load; with a rate per connection, at that rate (over that many connections) instead of the peak. */
export async function measureBareGrpcIntrospect(context: BenchContext, slug: string, ratePerConnection?: number, connections?: number): Promise<Measurement> {
  return measureGrpcUnary(context, { ...bareIntrospectCall(slug, await context.bareGrpcServer()), ratePerConnection, connections });
}

export const bareGrpcIntrospectOneInFlight: Row = {
  name: 'one call in flight: bare grpc-js, no-op Introspect',
  description: 'the bare server with one connection and one call at a time (h2load -c 1 -m 1): its latency, not its throughput',
  async measure(context) {
    return measureGrpcUnary(context, { ...bareIntrospectCall('bare-grpc-introspect-one', await context.bareGrpcServer()), connections: 1, streamsPerConnection: 1 });
  },
};

export function bareIntrospectCall(slug: string, server: BareGrpcTarget): GrpcUnaryCall {
  return {
    slug,
    address: server.grpcAddress,
    path: introspectPath,
    request: toBinary(IntrospectRequestSchema, create(IntrospectRequestSchema, { token: placeholderOpaqueToken })),
    checkAnswer: (message) => {
      if (!fromBinary(IntrospectResponseSchema, message).active) throw new Error('the bare server answered active: false');
    },
    server: server.process,
  };
}
