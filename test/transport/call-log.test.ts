// One log line per call on either port carries the caller's own
// x-request-id, so an operator can match Tally's line to the caller's logs;
// an id that could forge or bloat log fields is dropped, not cleaned.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenService } from '../../src/gen/tally/v1/token_service_pb.js';
import { eventually } from '../support/eventually.js';
import { startInProcessTally, type InProcessTally } from '../support/in-process-tally.js';
import { createTallyClients, type TallyClients } from '../support/tally-clients.js';

describe('request ids in call log lines', () => {
  let tally: InProcessTally;
  let clients: TallyClients;
  beforeAll(async () => {
    tally = await startInProcessTally();
    clients = createTallyClients(tally);
  });
  afterAll(async () => {
    clients?.close();
    await tally?.close();
  });

  const lineWith = (requestId: string) => eventually(async () => {
    const line = tally.logs().find((entry) => entry.msg === 'call' && entry.request_id === requestId);
    if (line === undefined) throw new Error(`no call line with request_id ${requestId}`);
    return line;
  }, 2_000);

  it('logs the x-request-id a gRPC caller sent', async () => {
    await clients.grpc.unary(TokenService.method.listKeys, {}, { metadata: { 'x-request-id': 'grpc-req-1' } });
    expect(await lineWith('grpc-req-1')).toMatchObject({ method: 'tally.v1.TokenService/ListKeys', protocol: 'grpc' });
  });

  it('logs the x-request-id a Connect caller sent', async () => {
    await clients.connect.listKeys({}, { headers: { 'x-request-id': 'connect-req-1' } });
    expect(await lineWith('connect-req-1')).toMatchObject({ method: 'tally.v1.TokenService/ListKeys', protocol: 'connect' });
  });

  it.each([
    ['with a space', 'a b'],
    ['too long', 'x'.repeat(129)],
    ['with a quote', 'a"b'],
  ])('drops an id %s', async (_name, requestId) => {
    const marker = `marker-${Math.random()}`;
    await clients.grpc.unary(TokenService.method.listKeys, {}, { metadata: { 'x-request-id': requestId, 'x-marker': marker } });
    // A well-formed call after it shows the log has caught up.
    await clients.grpc.unary(TokenService.method.listKeys, {}, { metadata: { 'x-request-id': marker } });
    await lineWith(marker);
    expect(tally.logs().some((entry) => entry.request_id === requestId)).toBe(false);
  });
});
