// The hostile-input table: for every TokenService RPC on every protocol, and
// every plain HTTP endpoint, the bytes a broken or malicious client can send.
// A case is a name and a way to send it; hostile-input.test.ts judges the
// answers. To cover a new endpoint, add a row to HTTP_ENDPOINTS.
import { create, toBinary } from '@bufbuild/protobuf';
import { IntrospectRequestSchema, IssueRequestSchema, TokenService } from '../../src/gen/tally/v1/token_service_pb.js';
import { createRawGrpcSender, frame, sendHttp, sendRawTcp, type Outcome } from './senders.js';

export interface HostileCase {
  name: string;
  send(): Promise<Outcome>;
}

export interface Target {
  grpcAddress: string;
  httpUrl: string;
  maxMessageBytes: number;
}

const INVALID_UTF8 = Buffer.from([0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x90, 0x28, 0xbc, 0xff, 0xfe]);

/** Protobuf bodies: each parses badly, or parses into nonsense. */
function protobufBodies(maxMessageBytes: number): Array<[string, Buffer]> {
  const stringField = (number: number, bytes: Buffer) => Buffer.concat([Buffer.from([(number << 3) | 2, bytes.length]), bytes]);
  return [
    ['empty message', Buffer.alloc(0)],
    ['garbage', Buffer.from('this is not protobuf \x00\x01\x02\xff')],
    ['truncated length-delimited field', Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff])],
    ['truncated varint', Buffer.from([0x08, 0xff, 0xff])],
    ['invalid wire type 7', Buffer.from([0x0f, 0x01])],
    ['field number 0', Buffer.from([0x02, 0x00])],
    ['invalid UTF-8 in field 1', stringField(1, INVALID_UTF8)],
    ['invalid UTF-8 in field 3', stringField(3, INVALID_UTF8)],
    ['group start without end', Buffer.from([0x0b])],
    ['wrong wire type for a message field (varint as ttl)', Buffer.from([0x0a, 0x01, 0x61, 0x28, 0x05])],
    ['a real Issue request sent to the wrong method', Buffer.from(toBinary(IssueRequestSchema, create(IssueRequestSchema, { subject: 'a', scopes: ['x'] })))],
    ['an oversized message', Buffer.alloc(maxMessageBytes + 1024, 0x41)],
    ['a thousand nested Struct levels', Buffer.concat([Buffer.from([0x3a]), Buffer.from(encodeNested(1000))])],
  ];
}

/** IssueRequest.claims (field 7, a Struct) nested deeply through list values. */
function encodeNested(depth: number): Uint8Array {
  let inner: Buffer = Buffer.alloc(0);
  for (let level = 0; level < depth; level += 1) {
    // Value.list_value (6) → ListValue.values (1) → Value ...
    const list = Buffer.concat([Buffer.from([0x0a]), varint(inner.length), inner]);
    inner = Buffer.concat([Buffer.from([0x32]), varint(list.length), list]);
  }
  // Struct.fields (1) entry: key "k" (1), value (2)
  const entry = Buffer.concat([Buffer.from([0x0a, 0x01, 0x6b, 0x12]), varint(inner.length), inner]);
  const struct = Buffer.concat([Buffer.from([0x0a]), varint(entry.length), entry]);
  return Buffer.concat([varint(struct.length), struct]);
}

function varint(value: number): Buffer {
  const bytes: number[] = [];
  let rest = value;
  while (rest > 0x7f) {
    bytes.push((rest & 0x7f) | 0x80);
    rest >>>= 7;
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

function jsonBodies(maxMessageBytes: number): Array<[string, string | Buffer]> {
  return [
    ['empty body', ''],
    ['unterminated object', '{'],
    ['an array', '[]'],
    ['null', 'null'],
    ['a number', '42'],
    ['wrong type: subject and token as numbers', '{"subject": 5, "token": 7}'],
    ['wrong type: token as an object', '{"token": {"a": 1}}'],
    ['wrong type: audience as a string', '{"subject": "a", "audience": "orders"}'],
    ['wrong type: ttl as words', '{"subject": "a", "ttl": "forever"}'],
    ['wrong type: format as an unknown name', '{"subject": "a", "format": "TOKEN_FORMAT_PLUTONIUM"}'],
    ['wrong type: claims as a list', '{"subject": "a", "claims": [1, 2]}'],
    ['wrong type: target oneof twice', '{"token": "a", "subject": "b"}'],
    ['unknown fields', '{"nope": true, "__proto__": {"polluted": 1}}'],
    ['invalid UTF-8', Buffer.concat([Buffer.from('{"subject": "'), INVALID_UTF8, Buffer.from('", "token": "'), INVALID_UTF8, Buffer.from('"}')])],
    ['lone surrogate escapes', '{"subject": "\\ud800", "token": "\\udfff"}'],
    ['NUL and control characters', '{"subject": "a\\u0000b\\u001b[31m", "token": "tly_\\u0000"}'],
    ['deep nesting', `{"subject":"a","claims":{"k":${'['.repeat(5000)}${']'.repeat(5000)}}}`],
    ['oversized', `{"token": "${'x'.repeat(maxMessageBytes + 1024)}"}`],
    ['a huge number', '{"subject": "a", "ttl": "1e400s"}'],
    ['a claim no JSON answer can hold', '{"subject": "a", "claims": {"n": 1e400, "m": -1e400}}'],
    ['a registered claim in capitals', '{"subject": "a", "claims": {"SUB": "mallory", "Client_Id": "x"}}'],
    ['a "__proto__" claim', '{"subject": "a", "claims": {"__proto__": {"admin": true}}}'],
  ];
}

export function buildCases(target: Target): { cases: HostileCase[]; close(): void } {
  const raw = createRawGrpcSender(target.grpcAddress);
  const grpcPort = Number(target.grpcAddress.slice(target.grpcAddress.lastIndexOf(':') + 1));
  const httpPort = Number(new URL(target.httpUrl).port);
  const cases: HostileCase[] = [];
  const add = (name: string, send: () => Promise<Outcome>) => cases.push({ name, send });

  for (const method of TokenService.methods) {
    const path = `/${TokenService.typeName}/${method.name}`;
    // WatchRevocations, FollowRevocations: a stream that starts is an answer (senders.ts).
    const stream = method.methodKind !== 'unary';
    for (const [bodyName, body] of protobufBodies(target.maxMessageBytes)) {
      add(`gRPC ${method.name}: ${bodyName}`, () => raw.send(path, frame(body), {}, { stream }));
      add(`Connect binary ${method.name}: ${bodyName}`, () => sendHttp(`${target.httpUrl}${path}`, { stream, headers: { 'content-type': 'application/proto' }, body }));
      add(`gRPC-Web ${method.name}: ${bodyName}`, () => sendHttp(`${target.httpUrl}${path}`, { stream, headers: { 'content-type': 'application/grpc-web+proto' }, body: frame(body) }));
    }
    add(`gRPC ${method.name}: no message at all`, () => raw.send(path, Buffer.alloc(0), {}, { stream }));
    add(`gRPC ${method.name}: a frame cut short`, () => raw.send(path, frame(Buffer.alloc(100)).subarray(0, 40), {}, { stream }));
    add(`gRPC ${method.name}: a frame header alone`, () => raw.send(path, Buffer.from([0, 0, 0, 0]), {}, { stream }));
    add(`gRPC ${method.name}: compressed flag without an encoding`, () => raw.send(path, frame(Buffer.from([0x0a, 0x01, 0x61]), 1), {}, { stream }));
    add(`gRPC ${method.name}: unknown grpc-encoding`, () => raw.send(path, frame(Buffer.from([0x0a, 0x01, 0x61]), 1), { 'grpc-encoding': 'snappy-ish' }, { stream }));
    add(`gRPC ${method.name}: a frame length of 4 GiB`, () => raw.send(path, Buffer.from([0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3]), {}, { stream }));
    add(`gRPC ${method.name}: two messages on a unary call`, () => raw.send(path, Buffer.concat([frame(Buffer.alloc(0)), frame(Buffer.alloc(0))]), {}, { stream }));
    add(`gRPC ${method.name}: wrong content-type`, () => raw.send(path, frame(Buffer.alloc(0)), { 'content-type': 'text/plain' }, { stream }));
    add(`gRPC ${method.name}: garbage authorization`, () => raw.send(path, frame(Buffer.alloc(0)), { authorization: 'Bearer \u00ff\u0000' }, { stream }));
    add(`gRPC ${method.name}: authorization that is not Bearer`, () => raw.send(path, frame(Buffer.alloc(0)), { authorization: 'Basic Zm9vOmJhcg==' }, { stream }));
    add(`gRPC ${method.name}: an absurd grpc-timeout`, () => raw.send(path, frame(Buffer.alloc(0)), { 'grpc-timeout': '99999999999999H' }, { stream }));
    for (const [bodyName, body] of jsonBodies(target.maxMessageBytes)) {
      add(`Connect JSON ${method.name}: ${bodyName}`, () => sendHttp(`${target.httpUrl}${path}`, { stream, headers: { 'content-type': 'application/json' }, body }));
    }
    add(`Connect ${method.name}: unknown content-type`, () => sendHttp(`${target.httpUrl}${path}`, { stream, headers: { 'content-type': 'application/x-evil' }, body: '{}' }));
    add(`Connect ${method.name}: GET with a garbage message`, () => sendHttp(`${target.httpUrl}${path}?encoding=json&message=%7B%ZZ`, { stream, method: 'GET' }));
    add(`gRPC-Web ${method.name}: a frame cut short`, () => sendHttp(`${target.httpUrl}${path}`, { stream, headers: { 'content-type': 'application/grpc-web+proto' }, body: frame(Buffer.alloc(100)).subarray(0, 30) }));
    add(`gRPC-Web ${method.name}: text encoding that is not base64`, () => sendHttp(`${target.httpUrl}${path}`, { stream, headers: { 'content-type': 'application/grpc-web-text' }, body: '!!!not base64!!!' }));
  }

  for (const endpoint of HTTP_ENDPOINTS) {
    for (const [bodyName, body] of [...jsonBodies(target.maxMessageBytes), ...FORM_BODIES]) {
      for (const contentType of ['application/x-www-form-urlencoded', 'application/json']) {
        add(`HTTP ${endpoint.method} ${endpoint.path} (${contentType}): ${bodyName}`, () =>
          sendHttp(`${target.httpUrl}${endpoint.path}`, { method: endpoint.method, headers: { 'content-type': contentType }, body: endpoint.method === 'GET' ? undefined : body }),
        );
      }
    }
    add(`HTTP ${endpoint.path}: the wrong method`, () => sendHttp(`${target.httpUrl}${endpoint.path}`, { method: endpoint.method === 'GET' ? 'DELETE' : 'PUT', body: undefined }));
    add(`HTTP ${endpoint.path}: a query string of garbage`, () => sendHttp(`${target.httpUrl}${endpoint.path}?%ZZ=%00&a=${'b'.repeat(4000)}`, { method: 'GET' }));
    add(`HTTP ${endpoint.path}: garbage authorization`, () => sendHttp(`${target.httpUrl}${endpoint.path}`, { method: endpoint.method, headers: { authorization: 'Bearer ' + 'x'.repeat(8000) }, body: endpoint.method === 'GET' ? undefined : 'token=a' }));
  }
  add('HTTP: a path nobody serves', () => sendHttp(`${target.httpUrl}/../../etc/passwd`, { method: 'GET' }));

  const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
  const h2Frame = (type: number, flags: number, stream: number, payload: Buffer) => {
    const header = Buffer.alloc(9);
    header.writeUIntBE(payload.length, 0, 3);
    header[3] = type;
    header[4] = flags;
    header.writeUInt32BE(stream, 5);
    return Buffer.concat([header, payload]);
  };
  const settings = h2Frame(4, 0, 0, Buffer.alloc(0));
  const garbageFrames: Array<[string, Buffer]> = [
    ['random bytes instead of a preface', Buffer.from('\x16\x03\x01 this is not HTTP/2 \xff\xfe\x00')],
    ['preface then random bytes', Buffer.concat([preface, Buffer.from([0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])])],
    ['SETTINGS with a bad length', Buffer.concat([preface, h2Frame(4, 0, 0, Buffer.alloc(5))])],
    ['HEADERS on stream 0', Buffer.concat([preface, settings, h2Frame(1, 5, 0, Buffer.from([0x82]))])],
    ['HEADERS with a garbage HPACK block', Buffer.concat([preface, settings, h2Frame(1, 5, 1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x7f]))])],
    ['DATA on an idle stream', Buffer.concat([preface, settings, h2Frame(0, 1, 7, Buffer.from('hello'))])],
    ['WINDOW_UPDATE of zero', Buffer.concat([preface, settings, h2Frame(8, 0, 0, Buffer.alloc(4))])],
    ['a frame larger than the maximum', Buffer.concat([preface, settings, h2Frame(0, 0, 1, Buffer.alloc(20_000))])],
    ['RST_STREAM on stream 0', Buffer.concat([preface, settings, h2Frame(3, 0, 0, Buffer.alloc(4))])],
    ['CONTINUATION without HEADERS', Buffer.concat([preface, settings, h2Frame(9, 4, 1, Buffer.from([0x82]))])],
    ['PING with a bad length', Buffer.concat([preface, settings, h2Frame(6, 0, 0, Buffer.alloc(3))])],
    ['an HTTP/1.1 request', Buffer.from('POST /tally.v1.TokenService/Issue HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc')],
  ];
  for (const [name, bytes] of garbageFrames) {
    add(`raw gRPC port: ${name}`, () => sendRawTcp(grpcPort, bytes));
    add(`raw HTTP port: ${name}`, () => sendRawTcp(httpPort, bytes));
  }
  add('raw HTTP port: a header line of 100 KiB', () => sendRawTcp(httpPort, Buffer.from(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(100 * 1024)}\r\n\r\n`)));
  add('raw HTTP port: a request line of garbage', () => sendRawTcp(httpPort, Buffer.from('\x00\x01\x02 / HTTP/9.9\r\n\r\n')));
  add('raw HTTP port: chunked body with a bad chunk size', () =>
    sendRawTcp(httpPort, Buffer.from('POST /tally.v1.TokenService/Introspect HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n')),
  );
  return { cases, close: () => raw.close() };
}

/** Every plain HTTP endpoint the HTTP port serves. */
export const HTTP_ENDPOINTS: ReadonlyArray<{ method: 'GET' | 'POST'; path: string }> = [
  { method: 'GET', path: '/healthz' },
  { method: 'GET', path: '/readyz' },
  { method: 'POST', path: '/oauth2/introspect' },
  { method: 'POST', path: '/oauth2/revoke' },
  { method: 'GET', path: '/.well-known/jwks.json' },
  { method: 'GET', path: '/metrics' },
];

const FORM_BODIES: Array<[string, string | Buffer]> = [
  ['form: token missing', 'token_type_hint=access_token'],
  ['form: token twice', 'token=a&token=b'],
  ['form: bad percent-encoding', 'token=%ZZ%'],
  ['form: invalid UTF-8', Buffer.concat([Buffer.from('token='), INVALID_UTF8])],
  ['form: a forged opaque-looking token', `token=tly_${'A'.repeat(49)}`],
  ['form: a 100 KiB token', `token=${'x'.repeat(100 * 1024)}`],
];

/** An Introspect request for a token, as gRPC and Connect binary carry it. */
export function introspectBody(token: string): Buffer {
  return Buffer.from(toBinary(IntrospectRequestSchema, create(IntrospectRequestSchema, { token })));
}
