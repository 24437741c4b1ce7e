// grpcurl-style discovery: buf curl lists, describes and calls with no
// .proto files, through server reflection v1 and v1alpha.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInProcessTally, type InProcessTally } from '../support/in-process-tally.js';

const run = promisify(execFile);
const BUF = 'node_modules/.bin/buf';

async function bufCurl(args: string[]): Promise<string> {
  const { stdout } = await run(BUF, ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', ...args], { timeout: 20_000 });
  return stdout;
}

describe.each(['grpc-v1', 'grpc-v1alpha'])('server reflection (%s) through buf curl', (reflectProtocol) => {
  let tally: InProcessTally;
  let base: string;

  beforeAll(async () => {
    tally = await startInProcessTally();
    base = `http://${tally.grpcAddress}`;
  });
  afterAll(async () => {
    await tally.close();
  });

  const reflect = ['--reflect-protocol', reflectProtocol];

  it('lists every service served on the gRPC port', async () => {
    const services = (await bufCurl([...reflect, '--list-services', base])).trim().split('\n');
    expect(services).toEqual([
      'envoy.service.auth.v3.Authorization',
      'grpc.health.v1.Health',
      'grpc.reflection.v1.ServerReflection',
      'grpc.reflection.v1alpha.ServerReflection',
      'tally.v1.TokenService',
    ]);
  });

  it('lists every TokenService method', async () => {
    const methods = (await bufCurl([...reflect, '--list-methods', base])).trim().split('\n');
    expect(methods).toEqual(
      expect.arrayContaining(['Issue', 'Introspect', 'Revoke', 'RotateKeys', 'SetDefaultAlgorithm', 'RetireAlgorithm', 'ListKeys', 'RevokeKey', 'WatchRevocations', 'AcknowledgeRevocations', 'FollowRevocations'].map((name) => `tally.v1.TokenService/${name}`)),
    );
  });

  it('calls Issue, Introspect and Revoke with JSON and no .proto files', async () => {
    const issued = JSON.parse(
      await bufCurl([...reflect, '-d', '{"subject":"alice","scopes":["read"],"format":"TOKEN_FORMAT_JWT","ttl":"90s"}', `${base}/tally.v1.TokenService/Issue`]),
    ) as { token: string; tokenId: string; format: string };
    expect(issued.format).toBe('TOKEN_FORMAT_JWT');
    const introspected = JSON.parse(
      await bufCurl([...reflect, '-d', JSON.stringify({ token: issued.token }), `${base}/tally.v1.TokenService/Introspect`]),
    ) as Record<string, unknown>;
    expect(introspected).toMatchObject({ active: true, subject: 'alice', scopes: ['read'], tokenId: issued.tokenId });
    await bufCurl([...reflect, '-d', JSON.stringify({ tokenId: issued.tokenId }), `${base}/tally.v1.TokenService/Revoke`]);
    const after = JSON.parse(
      await bufCurl([...reflect, '-d', JSON.stringify({ token: issued.token }), `${base}/tally.v1.TokenService/Introspect`]),
    ) as Record<string, unknown>;
    expect(after).toEqual({});
  });

  it('describes tally.v1.TokenService: the file it serves holds the service with its methods and imports', async () => {
    const service = reflectProtocol === 'grpc-v1' ? 'grpc.reflection.v1.ServerReflection' : 'grpc.reflection.v1alpha.ServerReflection';
    const answer = JSON.parse(
      await bufCurl([...reflect, '-d', '{"fileContainingSymbol":"tally.v1.TokenService"}', `${base}/${service}/ServerReflectionInfo`]),
    ) as { fileDescriptorResponse: { fileDescriptorProto: string[] } };
    const files = answer.fileDescriptorResponse.fileDescriptorProto.map((encoded) =>
      fromBinary(FileDescriptorProtoSchema, Buffer.from(encoded, 'base64')),
    );
    const main = files.find((file) => file.name === 'tally/v1/token_service.proto');
    expect(main?.service[0]?.method.map((method) => method.name)).toEqual(['Issue', 'Introspect', 'Revoke', 'RotateKeys', 'SetDefaultAlgorithm', 'RetireAlgorithm', 'ListKeys', 'RevokeKey', 'WatchRevocations', 'AcknowledgeRevocations', 'FollowRevocations']);
    expect(main?.dependency).toEqual(
      expect.arrayContaining(['google/protobuf/duration.proto', 'google/protobuf/struct.proto', 'google/protobuf/timestamp.proto']),
    );
  });

  it('calls grpc.health.v1.Health/Check through reflection', async () => {
    const answer = JSON.parse(await bufCurl([...reflect, '-d', '{}', `${base}/grpc.health.v1.Health/Check`])) as unknown;
    expect(answer).toEqual({ status: 'SERVING' });
  });
});
