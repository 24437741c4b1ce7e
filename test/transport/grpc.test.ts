// The gRPC port: the shared TokenService suite through an independent grpc-js
// client, then what only gRPC has: a request that is not a message at all,
// and a deadline sent as grpc-timeout that the client does not enforce.

import * as grpc from '@grpc/grpc-js';
import { Code } from '@connectrpc/connect';
import { create, toBinary } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IssueRequestSchema, TokenService } from '../../src/gen/tally/v1/token_service_pb.js';
import { createControllableStore, type ControllableStore } from '../support/controllable-store.js';
import { eventually } from '../support/eventually.js';
import { createGrpcTestClient, grpcStatusOf, type GrpcTestClient } from '../support/grpc-client.js';
import { startInProcessTally, type InProcessTally } from '../support/in-process-tally.js';
import { startRawGrpcCall } from '../support/raw-grpc.js';
import { describeTokenServiceConformance } from './conformance.js';

describeTokenServiceConformance('gRPC (grpc-js server, independent grpc-js client)', {
  protocol: 'grpc',
  connect(tally) {
    const client = createGrpcTestClient(tally.grpcAddress);
    return {
      call: (method, request, options = {}) => client.unary(method, request, { deadlineMs: options.timeoutMs, metadata: options.headers }),
      // grpc-js's status numbers are the gRPC status codes, as Connect's Code is.
      failureFrom: (error) => ({ code: (error as grpc.ServiceError).code as number as Code, message: (error as grpc.ServiceError).details }),
      close: () => client.close(),
    };
  },
});

describe('TokenService on the gRPC port, at the gRPC level', () => {
  let tally: InProcessTally;
  let client: GrpcTestClient;
  let slowStore: ControllableStore;

  beforeAll(async () => {
    slowStore = createControllableStore();
    tally = await startInProcessTally({ store: slowStore.store });
    client = createGrpcTestClient(tally.grpcAddress);
  });
  afterAll(async () => {
    slowStore?.release();
    client?.close();
    await tally?.close();
  });

  it('answers a request that is not a valid message with INVALID_ARGUMENT, not INTERNAL', async () => {
    const status = await grpcStatusOf(client.unaryRaw(TokenService.method.issue, new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff])));
    expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it('ends a call at the deadline the client sent, even when the client does not enforce it', async () => {
    slowStore.hold();
    try {
      const started = performance.now();
      // grpc-timeout only, no client-side timer: whatever ends the call is the server.
      const call = startRawGrpcCall(tally.grpcAddress, '/tally.v1.TokenService/Issue', { 'grpc-timeout': '200m' });
      call.send(toBinary(IssueRequestSchema, create(IssueRequestSchema, { subject: 'slow' })));
      const { status } = await call.result;
      expect(status).toBe(grpc.status.DEADLINE_EXCEEDED);
      expect(performance.now() - started).toBeLessThan(2_000);
    } finally {
      slowStore.release();
    }
    await eventually(async () => {
      const line = tally.logs().find((entry) => entry.method === 'tally.v1.TokenService/Issue' && entry.code === 'deadline_exceeded');
      expect(line).toBeDefined();
    }, 2_000);
  });
});
