// Tally's gRPC Introspect under h2load, shared by every row that introspects one
// issued token (opaque or JWT, cache off or on, at the peak or at a set rate):
// the answer must name the issued token, and Tally's own call log must show
// only successful, active answers for the calls this row made.
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { IntrospectRequestSchema, IntrospectResponseSchema, type IssueResponse } from '../../src/gen/tally/v1/token_service_pb.js';
import type { TallyTarget } from '../targets/tally.js';
import type { BenchContext } from './context.js';
import { benchIssueRequest, introspectPath } from './fixtures.js';
import { measureGrpcUnary } from './measure-grpc-unary.js';
import type { Measurement } from './row.js';
import { callLogSize, summarizeCallLog } from './tally-call-log.js';

export interface TallyIntrospectLoad {
  readonly slug: string;
  readonly tally: TallyTarget;
  readonly issued: IssueResponse;
  readonly ratePerConnection?: number;
}

export async function measureTallyIntrospect(context: BenchContext, load: TallyIntrospectLoad): Promise<Measurement> {
  const { tally, issued } = load;
  const expected = benchIssueRequest();
  // The same process may have served earlier rows; only this row's calls are checked.
  const logStart = callLogSize(tally.process.logPath);
  return measureGrpcUnary(context, {
    slug: load.slug,
    address: tally.grpcAddress,
    path: introspectPath,
    request: toBinary(IntrospectRequestSchema, create(IntrospectRequestSchema, { token: issued.token })),
    ratePerConnection: load.ratePerConnection,
    checkAnswer: (message) => {
      const answer = fromBinary(IntrospectResponseSchema, message);
      if (!answer.active) throw new Error('Tally answered active: false for the token it just issued');
      if (answer.subject !== expected.subject || answer.tokenId !== issued.tokenId) {
        throw new Error(`Tally's answer names subject ${answer.subject} and token ${answer.tokenId}, not ${expected.subject} and ${issued.tokenId}`);
      }
    },
    server: tally.process,
    afterLoad: async (result) => {
      const log = await summarizeCallLog(tally.process.logPath, 'TokenService/Introspect', logStart);
      if (log === undefined) return "Tally's call log had no Introspect lines to cross-check";
      // h2load resets the streams still in flight when each of its runs ends; those
      // calls are logged as canceled, at most one per stream slot per run.
      const { canceled = 0, ...failures } = log.failures;
      const inFlightLimit = 2 * context.settings.connections * context.settings.streamsPerConnection;
      if (Object.keys(failures).length > 0 || Object.keys(log.inactive).length > 0 || canceled > inFlightLimit) {
        throw new Error(`Tally's call log shows failed or inactive Introspect calls: ${JSON.stringify(log)}`);
      }
      if (log.calls < result.statusCodes['2xx']) {
        throw new Error(`Tally logged ${log.calls} Introspect calls, fewer than the ${result.statusCodes['2xx']} answers h2load counted`);
      }
      return `Tally's call log: ${log.calls} Introspect calls in this row (warm-up included), all ok and active but ${canceled} canceled by h2load stopping`;
    },
  });
}
