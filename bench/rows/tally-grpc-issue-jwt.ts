import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { decodeProtectedHeader } from 'jose';
import { IssueRequestSchema, IssueResponseSchema, TokenFormat } from '../../src/gen/tally/v1/token_service_pb.js';
import { benchIssueRequest, issuePath, type BenchJwtAlgorithm } from '../lib/fixtures.js';
import { measureGrpcUnary } from '../lib/measure-grpc-unary.js';
import type { Row } from '../lib/row.js';

// Issue of a JWT under h2load: each call signs a new token and writes its record
// to Redis. Every answer must be a JWT signed with the algorithm asked for: the
// answers before and after the load are decoded and checked, and every answer
// under load must be a gRPC success, as on every other row.
function tallyGrpcIssueJwt(algorithm: BenchJwtAlgorithm): Row {
  const slug = `tally-grpc-issue-jwt-${algorithm.toLowerCase()}`;
  return {
    name: `Tally gRPC Issue, JWT ${algorithm}`,
    description:
      `Issue of an RFC 9068 JWT signed with ${algorithm} (named in the request), over gRPC to the Tally with the default cache: ` +
      'one signature and one Redis write per call; every answer a distinct token of the same size',
    async measure(context) {
      const [tally] = await Promise.all([context.cachedTally(), context.signingKey(algorithm)]);
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
      });
    },
  };
}

export const tallyGrpcIssueJwtEdDsa = tallyGrpcIssueJwt('EdDSA');
export const tallyGrpcIssueJwtMlDsa65 = tallyGrpcIssueJwt('ML-DSA-65');
