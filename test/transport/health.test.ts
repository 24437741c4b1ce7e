import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
  type HealthCheckResponse,
} from '../../src/gen/grpc/health/v1/health_pb.js';
import { TokenService } from '../../src/gen/tally/v1/token_service_pb.js';
import { createControllableStore } from '../support/controllable-store.js';
import { eventually } from '../support/eventually.js';
import { createGrpcTestClient, grpcStatusOf, type GrpcTestClient } from '../support/grpc-client.js';
import { startInProcessTally, type InProcessTally } from '../support/in-process-tally.js';
import { startRawGrpcCall } from '../support/raw-grpc.js';
import { create, toBinary } from '@bufbuild/protobuf';
import { IssueRequestSchema } from '../../src/gen/tally/v1/token_service_pb.js';

/** Collects a Watch stream's statuses as they arrive. */
function watch(client: GrpcTestClient, service: string) {
  const statuses: ServingStatus[] = [];
  const stream = client.serverStream(Health.method.watch, { service });
  stream.on('data', (response: HealthCheckResponse) => statuses.push(response.status));
  const ended = new Promise<void>((resolve) => {
    stream.on('status', () => resolve());
    stream.on('error', () => resolve());
  });
  return { statuses, stream, ended };
}

describe('gRPC health and HTTP probes', () => {
  let tally: InProcessTally | undefined;
  let client: GrpcTestClient | undefined;

  afterEach(async () => {
    client?.close();
    await tally?.close();
    tally = undefined;
    client = undefined;
  });

  async function start(options: Parameters<typeof startInProcessTally>[0] = {}) {
    tally = await startInProcessTally(options);
    client = createGrpcTestClient(tally.grpcAddress);
    return { tally, client };
  }

  it('Check says SERVING for the server and for tally.v1.TokenService, NOT_FOUND for other services', async () => {
    const { client } = await start();
    for (const service of ['', TokenService.typeName]) {
      expect((await client.unary(Health.method.check, { service })).status).toBe(ServingStatus.SERVING);
    }
    const unknown = await grpcStatusOf(client.unary(Health.method.check, { service: 'no.such.Service' }));
    expect(unknown.code).toBe(grpc.status.NOT_FOUND);
  });

  it('/healthz answers 200 and /readyz 200 while ready', async () => {
    const { tally } = await start();
    const healthz = await fetch(`${tally.httpUrl}/healthz`);
    expect(healthz.status).toBe(200);
    const readyz = await fetch(`${tally.httpUrl}/readyz`);
    expect(readyz.status).toBe(200);
    expect(await readyz.text()).toBe('ready\n');
    expect((await fetch(`${tally.httpUrl}/readyz`, { method: 'POST' })).status).toBe(405);
  });

  it('goes NOT_SERVING (Check, Watch and /readyz) while the store does not answer, and back when it does', async () => {
    const controllable = createControllableStore();
    const { tally, client } = await start({ store: controllable.store, healthCheckIntervalMs: 20 });
    const watcher = watch(client, TokenService.typeName);
    await eventually(async () => expect(watcher.statuses).toEqual([ServingStatus.SERVING]), 2_000);

    controllable.setUnavailable(true);
    await eventually(async () => {
      expect((await client.unary(Health.method.check, { service: '' })).status).toBe(ServingStatus.NOT_SERVING);
      expect((await fetch(`${tally.httpUrl}/readyz`)).status).toBe(503);
      // Alive all the same: a restart would not bring the store back.
      expect((await fetch(`${tally.httpUrl}/healthz`)).status).toBe(200);
    }, 2_000);

    controllable.setUnavailable(false);
    await eventually(async () => {
      expect((await fetch(`${tally.httpUrl}/readyz`)).status).toBe(200);
      expect(watcher.statuses).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING, ServingStatus.SERVING]);
    }, 2_000);
    watcher.stream.cancel();
  });

  it('Watch of an unknown service says SERVICE_UNKNOWN and stays open', async () => {
    const { client } = await start();
    const watcher = watch(client, 'no.such.Service');
    await eventually(async () => expect(watcher.statuses).toEqual([ServingStatus.SERVICE_UNKNOWN]), 2_000);
    watcher.stream.cancel();
  });

  it('draining: watchers see NOT_SERVING and their streams end, and a call in flight still completes', async () => {
    const controllable = createControllableStore();
    const { tally, client } = await start({ store: controllable.store });
    const watcher = watch(client, '');
    await eventually(async () => expect(watcher.statuses).toEqual([ServingStatus.SERVING]), 2_000);

    // A call the server has begun, stuck in a slow store when the drain starts.
    controllable.hold();
    const inFlight = startRawGrpcCall(tally.grpcAddress, '/tally.v1.TokenService/Issue');
    inFlight.send(toBinary(IssueRequestSchema, create(IssueRequestSchema, { subject: 'in-flight' })));
    await eventually(async () => expect(controllable.waiting()).toBeGreaterThan(0), 2_000);

    const stopped = tally.shutdown(5_000);
    await watcher.ended;
    expect(watcher.statuses).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
    expect(tally.readiness.serving()).toBe(false);

    controllable.release();
    const { status } = await inFlight.result;
    expect(status).toBe(grpc.status.OK);
    expect(await stopped).toEqual({ grpcClean: true, httpClean: true });
  });
});
