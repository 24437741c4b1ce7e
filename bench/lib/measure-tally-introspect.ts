// Tally's gRPC Introspect of one issued token (opaque or JWT, cache off or on, under
// h2load or the open-loop generator): the answer must name the issued token. Under
// load the same checks as on the bare server hold: every answer must carry exactly
// the bytes of the answer verified before the load (the call log is not read: its
// level and format are Tally's to choose).
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { IntrospectRequestSchema, IntrospectResponseSchema, type IssueResponse } from '../../src/gen/tally/v1/token_service_pb.js';
import type { TallyTarget } from '../targets/tally.js';
import type { BenchContext } from './context.js';
import { benchIssueRequest, introspectPath } from './fixtures.js';
import { measureGrpcUnary, type GrpcUnaryCall } from './measure-grpc-unary.js';
import type { Measurement } from './row.js';

export interface TallyIntrospectLoad {
  readonly slug: string;
  readonly tally: TallyTarget;
  readonly issued: IssueResponse;
  readonly ratePerConnection?: number;
}

export function tallyIntrospectCall(slug: string, tally: TallyTarget, issued: IssueResponse): GrpcUnaryCall {
  const expected = benchIssueRequest();
  return {
    slug,
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
  };
}

export function measureTallyIntrospect(context: BenchContext, load: TallyIntrospectLoad): Promise<Measurement> {
  return measureGrpcUnary(context, { ...tallyIntrospectCall(load.slug, load.tally, load.issued), ratePerConnection: load.ratePerConnection });
}
