// grpc.health.v1.Health on the gRPC port, answering from the shared
// readiness (store answers, key ring loaded, not draining) for the whole
// server ("") and for tally.v1.TokenService.
//
// Written here rather than taken from grpc-health-check because draining
// needs what that package cannot do: end every open Watch stream after it has
// seen NOT_SERVING, so a graceful server shutdown is not held open by watchers.

import * as grpc from '@grpc/grpc-js';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import {
  Health,
  HealthCheckRequestSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
  HealthCheckResponseSchema,
  HealthListResponseSchema,
} from '../../gen/grpc/health/v1/health_pb.js';
import type { Readiness } from '../telemetry/readiness.js';

export interface HealthService {
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
  /** Ends every Watch stream; call after readiness has drained, so each saw NOT_SERVING. */
  endWatches(): void;
}

function methodDefinition(name: string, responseStream: boolean): grpc.MethodDefinition<Buffer, Uint8Array> {
  return {
    path: `/${Health.typeName}/${name}`,
    requestStream: false,
    responseStream,
    requestDeserialize: (bytes: Buffer) => bytes,
    requestSerialize: (bytes: Buffer) => bytes,
    responseSerialize: (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    responseDeserialize: (bytes: Buffer) => bytes,
  };
}

function encodeStatus(status: ServingStatus): Uint8Array {
  return toBinary(HealthCheckResponseSchema, create(HealthCheckResponseSchema, { status }));
}

function parseServiceName(bytes: Buffer): string | undefined {
  try {
    return fromBinary(HealthCheckRequestSchema, bytes).service;
  } catch {
    return undefined;
  }
}

function invalidRequest(): grpc.ServerErrorResponse {
  return Object.assign(new Error('the request message could not be parsed'), {
    code: grpc.status.INVALID_ARGUMENT,
    details: 'the request message could not be parsed',
  });
}

export function createHealthService(readiness: Readiness, serviceNames: readonly string[]): HealthService {
  const known = new Set(['', ...serviceNames]);
  const watches = new Set<grpc.ServerWritableStream<Buffer, Uint8Array>>();
  const statusNow = () => (readiness.serving() ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);

  const check: grpc.handleUnaryCall<Buffer, Uint8Array> = (call, callback) => {
    const name = parseServiceName(call.request);
    if (name === undefined) return callback(invalidRequest());
    if (!known.has(name)) {
      return callback(
        Object.assign(new Error('unknown service'), { code: grpc.status.NOT_FOUND, details: `unknown service ${JSON.stringify(name)}` }),
      );
    }
    callback(null, encodeStatus(statusNow()));
  };

  const watch: grpc.handleServerStreamingCall<Buffer, Uint8Array> = (call) => {
    const name = parseServiceName(call.request);
    if (name === undefined) {
      call.emit('error', invalidRequest());
      return;
    }
    if (!known.has(name)) {
      // As the protocol asks: say SERVICE_UNKNOWN and keep the stream open.
      call.write(encodeStatus(ServingStatus.SERVICE_UNKNOWN));
      watches.add(call);
      call.once('cancelled', () => watches.delete(call));
      return;
    }
    call.write(encodeStatus(statusNow()));
    const unsubscribe = readiness.onChange((serving) => {
      call.write(encodeStatus(serving ? ServingStatus.SERVING : ServingStatus.NOT_SERVING));
    });
    watches.add(call);
    call.once('cancelled', () => {
      unsubscribe();
      watches.delete(call);
    });
    call.once('finish', unsubscribe);
  };

  const list: grpc.handleUnaryCall<Buffer, Uint8Array> = (_call, callback) => {
    const status = statusNow();
    const statuses = Object.fromEntries([...known].map((name) => [name, { status }]));
    callback(null, toBinary(HealthListResponseSchema, create(HealthListResponseSchema, { statuses })));
  };

  return {
    definition: {
      Check: methodDefinition('Check', false),
      Watch: methodDefinition('Watch', true),
      List: methodDefinition('List', false),
    },
    implementation: { Check: check, Watch: watch, List: list },
    endWatches() {
      for (const call of watches) call.end();
      watches.clear();
    },
  };
}
