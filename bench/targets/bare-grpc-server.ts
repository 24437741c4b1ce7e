// The ceiling: a @grpc/grpc-js server whose Introspect does nothing but answer a
// fixed, pre-encoded message. Run as its own process, like Tally, so both share
// the machine with the load generator the same way.
//
// Usage: node --import tsx bench/targets/bare-grpc-server.ts <port>
import { Server, ServerCredentials, type ServiceDefinition, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { bareIntrospectResponseBytes, introspectPath } from '../lib/fixtures.js';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: bare-grpc-server.ts <port>');
  process.exit(2);
}

const response = Buffer.from(bareIntrospectResponseBytes());
const passThrough = (value: Buffer): Buffer => value;

// Requests stay undecoded bytes: the baseline is grpc-js's own cost per call, and
// decoding a one-field message is noise next to it.
const service: ServiceDefinition = {
  Introspect: {
    path: introspectPath,
    requestStream: false,
    responseStream: false,
    requestSerialize: passThrough,
    requestDeserialize: passThrough,
    responseSerialize: passThrough,
    responseDeserialize: passThrough,
  },
};

// Printed at exit, so a CPU profile of this process can be read per call.
let calls = 0;
const server = new Server();
server.addService(service, {
  Introspect(_call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) {
    calls++;
    callback(null, response);
  },
});
server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (error, boundPort) => {
  if (error) {
    console.error(`bind failed: ${error.message}`);
    process.exit(1);
  }
  console.log(`bare grpc-js server listening on 127.0.0.1:${boundPort}`);
});

const shutDown = (): void =>
  server.tryShutdown(() => {
    console.log(`answered ${calls} calls`);
    process.exit(0);
  });
process.once('SIGTERM', shutDown);
process.once('SIGINT', shutDown);
