import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { decodeProtectedHeader } from 'jose';
import { IssueRequestSchema, IssueResponseSchema, TokenFormat } from '../../src/gen/tally/v1/token_service_pb.js';
import { benchIssueRequest, issuePath, type BenchJwtAlgorithm } from '../lib/fixtures.js';
import { measureGrpcUnary } from '../lib/measure-grpc-unary.js';
import type { Row } from '../lib/row.js';
import { callLogSize, summarizeCallLog } from '../lib/tally-call-log.js';

// Issue of a JWT under h2load: each call signs a new token and writes its record
// to Redis. Every answer must be a JWT signed with the algorithm asked for, and
// Tally's own call log must show every Issue of this row ok.
function tallyGrpcIssueJwt(algorithm: BenchJwtAlgorithm): Row {
  const slug = `tally-grpc-issue-jwt-${algorithm.toLowerCase()}`;
  return {
    name: `Tally gRPC Issue, JWT ${algorithm}`,
    description:
      `Issue of an RFC 9068 JWT signed with ${algorithm} (named in the request), over gRPC to the Tally with the default cache: ` +
      'one signature and one Redis write per call; every answer a distinct token of the same size',
    async measure(context) {
      const [tally] = await Promise.all([context.cachedTally(), context.signingKey(algorithm)]);
      const logStart = callLogSize(tally.process.logPath);
      return measureGrpcUnary(context, {
        slug,
        address: tally.grpcAddress,
        path: issuePath,
        request: toBinary(IssueRequestSchema, create(IssueRequestSchema, benchIssueRequest(TokenFormat.JWT, algorithm))),
        answersVary: true,
        checkAnswer: (message) => {
          const issued = fromBinary(IssueResponseSchema, message);
          if (issued.format !== TokenFormat.JWT || decodeProtectedHeader(issued.token).alg !== algorithm) {
            throw new Error(`Issue answered a token that is not a ${algorithm} JWT`);
          }
        },
        server: tally.process,
        afterLoad: async (result) => {
          const log = await summarizeCallLog(tally.process.logPath, 'TokenService/Issue', logStart);
          if (log === undefined) return "Tally's call log had no Issue lines to cross-check";
          const { canceled = 0, ...failures } = log.failures;
          if (Object.keys(failures).length > 0) throw new Error(`Tally's call log shows failed Issue calls: ${JSON.stringify(log)}`);
          if (log.calls < result.statusCodes['2xx']) {
            throw new Error(`Tally logged ${log.calls} Issue calls, fewer than the ${result.statusCodes['2xx']} answers h2load counted`);
          }
          return `Tally's call log: ${log.calls} Issue calls in this row (warm-up included), all ok but ${canceled} canceled by h2load stopping`;
        },
      });
    },
  };
}

export const tallyGrpcIssueJwtEdDsa = tallyGrpcIssueJwt('EdDSA');
export const tallyGrpcIssueJwtMlDsa65 = tallyGrpcIssueJwt('ML-DSA-65');
