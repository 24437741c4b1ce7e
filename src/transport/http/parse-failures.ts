// connect-node answers a request body that is not valid protobuf binary
// (Connect with application/proto, gRPC-Web) with INTERNAL and the parser's
// own words, before any handler or interceptor runs. A malformed request is
// the caller's fault: these answers become INVALID_ARGUMENT with a fixed
// message, as the gRPC port answers the same bytes. Only that one failure is
// rewritten; every other answer passes through untouched.
import { Code } from '@connectrpc/connect';
import { createAsyncIterable, type UniversalHandler, type UniversalServerResponse } from '@connectrpc/connect/protocol';
import { codeName, httpStatusOf } from '../call/errors.js';

const PARSE_FAILURE = 'parse binary:';
const MESSAGE = 'the request message could not be parsed';

async function bodyBytes(body: UniversalServerResponse['body']): Promise<Uint8Array> {
  if (body === undefined) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function grpcMessageOf(value: string | null): string {
  if (value === null) return '';
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** A gRPC-Web answer that is one trailer frame saying the request did not parse, rewritten; else undefined. */
function correctedGrpcWebTrailer(bytes: Uint8Array): Uint8Array | undefined {
  // Flag 0x80 marks the trailer frame; an error before the handler is the whole body.
  if (bytes.length < 5 || bytes[0] !== 0x80 || Buffer.from(bytes).readUInt32BE(1) !== bytes.length - 5) return undefined;
  const trailer = Buffer.from(bytes.subarray(5)).toString('latin1');
  const status = /^grpc-status:\s*(\d+)\r?$/m.exec(trailer)?.[1];
  const message = grpcMessageOf(/^grpc-message:\s*(.*?)\r?$/m.exec(trailer)?.[1] ?? null);
  if (status !== String(Code.Internal) || !message.startsWith(PARSE_FAILURE)) return undefined;
  const text = Buffer.from(`grpc-status: ${Code.InvalidArgument}\r\ngrpc-message: ${encodeURIComponent(MESSAGE)}\r\n`, 'latin1');
  const frame = Buffer.alloc(5 + text.length);
  frame[0] = 0x80;
  frame.writeUInt32BE(text.length, 1);
  frame.set(text, 5);
  return frame;
}

/**
 * A stream's body, its first chunk rewritten when that chunk is a lone
 * trailer frame saying the request did not parse; the rest passes as it
 * comes, never waited for (a stream's end may be hours away).
 */
async function correctedStreamBody(body: AsyncIterable<Uint8Array>): Promise<AsyncIterable<Uint8Array>> {
  const chunks = body[Symbol.asyncIterator]();
  const first = await chunks.next();
  if (first.done === true) return createAsyncIterable([]);
  const trailer = correctedGrpcWebTrailer(first.value);
  return (async function* () {
    yield trailer ?? first.value;
    for (let next = await chunks.next(); next.done !== true; next = await chunks.next()) yield next.value;
  })();
}

async function corrected(response: UniversalServerResponse, streaming: boolean): Promise<UniversalServerResponse> {
  const header = response.header ?? new Headers();
  const contentType = header.get('content-type') ?? '';
  if (contentType.startsWith('application/grpc-web')) {
    // Either trailers-only (the status in the headers) or a lone trailer frame in the body.
    if (header.get('grpc-status') === String(Code.Internal) && grpcMessageOf(header.get('grpc-message')).startsWith(PARSE_FAILURE)) {
      header.set('grpc-status', String(Code.InvalidArgument));
      header.set('grpc-message', encodeURIComponent(MESSAGE));
      return { ...response, header };
    }
    if (header.has('grpc-status') || response.status !== 200) return response;
    if (streaming) return response.body === undefined ? response : { ...response, body: await correctedStreamBody(response.body) };
    const bytes = await bodyBytes(response.body);
    const trailer = correctedGrpcWebTrailer(bytes);
    if (trailer !== undefined && header.has('content-length')) header.set('content-length', String(trailer.byteLength));
    return { ...response, header, body: createAsyncIterable([trailer ?? bytes]) };
  }
  // Connect unary: a JSON error body under HTTP 500.
  if (response.status !== httpStatusOf(Code.Internal) || !contentType.startsWith('application/json')) return response;
  const bytes = await bodyBytes(response.body);
  let parsed: { code?: unknown; message?: unknown } | undefined;
  try {
    parsed = JSON.parse(Buffer.from(bytes).toString('utf8')) as { code?: unknown; message?: unknown };
  } catch {
    parsed = undefined;
  }
  if (typeof parsed?.message !== 'string' || !parsed.message.startsWith(PARSE_FAILURE)) return { ...response, body: createAsyncIterable([bytes]) };
  const body = Buffer.from(JSON.stringify({ code: codeName(Code.InvalidArgument), message: MESSAGE }));
  header.set('content-length', String(body.byteLength));
  return { ...response, status: httpStatusOf(Code.InvalidArgument), header, body: createAsyncIterable([body]) };
}

/** The same handler, with unparseable request bodies answered as the caller's fault. */
export function correctParseFailures(handler: UniversalHandler): UniversalHandler {
  const streaming = handler.method.methodKind !== 'unary';
  const wrapped = (async (request) => corrected(await handler(request), streaming)) as UniversalHandler;
  return Object.assign(wrapped, {
    requestPath: handler.requestPath,
    protocolNames: handler.protocolNames,
    supportedContentType: handler.supportedContentType,
    allowedMethods: handler.allowedMethods,
    service: handler.service,
    method: handler.method,
  });
}
