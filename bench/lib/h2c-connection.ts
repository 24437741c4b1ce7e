// A minimal HTTP/2 client connection (cleartext, prior knowledge) for the open-loop
// generator: it sends one pre-encoded request (HEADERS + DATA) per call and reads
// back only what the check needs. node:http2 builds a stream object, a headers
// object and half a dozen events per call, which costs a Node process about as much
// as the server it measures; on a shared 2-core machine that left the generator
// behind its schedule. Here a call is one buffer copy out and a few frame headers in.
//
// Response header blocks are not decoded (no HPACK state is needed to skip them).
// An answer is right when its DATA is exactly the expected bytes and a HEADERS frame
// ends the stream after it: a gRPC error from grpc-js is trailers-only (no DATA), and
// `active: false` or another token is different bytes. The bench's probes before and
// after each load decode everything, grpc-status included, with node:http2.
import { connect, type Socket } from 'node:net';

const frameHeaderLength = 9;
const frameType = { data: 0x0, headers: 0x1, rstStream: 0x3, settings: 0x4, ping: 0x6, goAway: 0x7, windowUpdate: 0x8 } as const;
const flag = { endStream: 0x1, ack: 0x1, endHeaders: 0x4, padded: 0x8 } as const;
const clientPreface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const defaultWindow = 65_535;
const largestWindow = 2 ** 31 - 1;

/** How a call ended: undefined when right, else what was wrong. */
export type CallOutcome = string | undefined;

export interface H2cConnection {
  /** Queues one call; `onEnd` runs once, when its stream ends or fails. Call flush() to send what is queued. */
  send(onEnd: (outcome: CallOutcome) => void): void;
  /** Writes every queued call in one socket write. */
  flush(): void;
  close(): void;
}

export interface H2cRequest {
  readonly host: string;
  readonly port: number;
  readonly path: string;
  /** Sent on every call, besides :method POST, :scheme http, :path and :authority. */
  readonly headers: Readonly<Record<string, string>>;
  /** The request body (one gRPC frame), sent in one DATA frame that ends the stream. */
  readonly body: Buffer;
  /** The exact response body a right answer carries. */
  readonly expectedBody: Buffer;
}

interface Call {
  readonly onEnd: (outcome: CallOutcome) => void;
  received: number;
  mismatch: boolean;
}

export function openH2cConnection(request: H2cRequest): Promise<H2cConnection> {
  const template = requestTemplate(request);
  const { expectedBody } = request;
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host: request.host, port: request.port, noDelay: true });
    const calls = new Map<number, Call>();
    let nextStreamId = 1;
    // Our DATA spends the server's connection window; past it, calls wait for a WINDOW_UPDATE.
    let sendWindow = defaultWindow;
    let queued: Buffer[] = [];
    const waitingForWindow: Buffer[] = [];
    // The server's SETTINGS_MAX_CONCURRENT_STREAMS: calls past it wait here for a stream, as a
    // real client queues them, and their latency still counts from their intended send time.
    let maxStreams = Infinity;
    const waitingForStream: Array<(outcome: CallOutcome) => void> = [];
    let pending: Buffer | undefined;
    let connected = false;
    let failure: string | undefined;

    const fail = (reason: string): void => {
      failure ??= reason;
      for (const call of calls.values()) call.onEnd(reason);
      calls.clear();
      for (const onEnd of waitingForStream.splice(0)) onEnd(reason);
      socket.destroy();
    };
    const end = (streamId: number, outcome: CallOutcome): void => {
      const call = calls.get(streamId);
      if (call === undefined) return;
      calls.delete(streamId);
      call.onEnd(outcome);
      if (waitingForStream.length > 0 && calls.size < maxStreams) dispatch(waitingForStream.shift()!);
    };
    const write = (frame: Buffer): void => {
      if (!socket.destroyed) socket.write(frame);
    };

    const onFrame = (type: number, flags: number, streamId: number, payload: Buffer): void => {
      switch (type) {
        case frameType.data: {
          const call = calls.get(streamId);
          if (call === undefined) return;
          let data = payload;
          if ((flags & flag.padded) !== 0) data = payload.subarray(1, payload.length - payload[0]!);
          const offset = call.received;
          call.received += data.length;
          if (call.received > expectedBody.length || !data.equals(expectedBody.subarray(offset, call.received))) call.mismatch = true;
          if ((flags & flag.endStream) !== 0) end(streamId, 'the stream ended without trailers');
          return;
        }
        case frameType.headers: {
          if ((flags & flag.endStream) === 0) return;
          const call = calls.get(streamId);
          if (call === undefined) return;
          if (call.received === 0) end(streamId, 'a trailers-only answer (a gRPC error)');
          else if (call.mismatch || call.received !== expectedBody.length) end(streamId, `a ${call.received}-byte answer that is not the expected ${expectedBody.length} bytes`);
          else end(streamId, undefined);
          return;
        }
        case frameType.rstStream:
          end(streamId, `the stream was reset (HTTP/2 error ${payload.readUInt32BE(0)})`);
          return;
        case frameType.settings:
          for (let offset = 0; offset + 6 <= payload.length; offset += 6) {
            if (payload.readUInt16BE(offset) === settingsMaxConcurrentStreams) maxStreams = payload.readUInt32BE(offset + 2);
          }
          if ((flags & flag.ack) === 0) write(frame(frameType.settings, flag.ack, 0, Buffer.alloc(0)));
          if (!connected) {
            connected = true;
            resolve(connection);
          }
          return;
        case frameType.ping:
          if ((flags & flag.ack) === 0) write(frame(frameType.ping, flag.ack, 0, payload));
          return;
        case frameType.goAway:
          fail(`the server closed the connection (GOAWAY, HTTP/2 error ${payload.readUInt32BE(4)})`);
          return;
        case frameType.windowUpdate:
          if (streamId !== 0) return;
          sendWindow += payload.readUInt32BE(0) & 0x7fffffff;
          while (waitingForWindow.length > 0 && sendWindow >= request.body.length) {
            sendWindow -= request.body.length;
            queued.push(waitingForWindow.shift()!);
          }
          connection.flush();
          return;
        default:
          return;
      }
    };

    socket.on('data', (chunk: Buffer) => {
      let buffer = pending === undefined ? chunk : Buffer.concat([pending, chunk]);
      while (buffer.length >= frameHeaderLength) {
        const length = buffer.readUIntBE(0, 3);
        if (buffer.length < frameHeaderLength + length) break;
        onFrame(buffer[3]!, buffer[4]!, buffer.readUInt32BE(5) & 0x7fffffff, buffer.subarray(frameHeaderLength, frameHeaderLength + length));
        buffer = buffer.subarray(frameHeaderLength + length);
      }
      pending = buffer.length === 0 ? undefined : buffer;
      // Calls that waited for a stream and got one as answers came in.
      connection.flush();
    });
    socket.once('error', (error) => (connected ? fail(error.message) : reject(error)));
    socket.once('close', () => fail('the connection closed'));

    /** Opens the next stream for a call: stream ids must rise in the order streams open. */
    const dispatch = (onEnd: (outcome: CallOutcome) => void): void => {
      const streamId = nextStreamId;
      nextStreamId += 2;
      calls.set(streamId, { onEnd, received: 0, mismatch: false });
      const frames = Buffer.from(template.bytes);
      frames.writeUInt32BE(streamId, template.headersStreamIdOffset);
      frames.writeUInt32BE(streamId, template.dataStreamIdOffset);
      if (sendWindow >= request.body.length) {
        sendWindow -= request.body.length;
        queued.push(frames);
      } else {
        waitingForWindow.push(frames);
      }
    };

    const connection: H2cConnection = {
      send(onEnd) {
        if (failure !== undefined) {
          onEnd(failure);
          return;
        }
        if (calls.size >= maxStreams) waitingForStream.push(onEnd);
        else dispatch(onEnd);
      },
      flush() {
        if (queued.length === 0) return;
        write(queued.length === 1 ? queued[0]! : Buffer.concat(queued));
        queued = [];
      },
      close() {
        // Calls still open stay unanswered: their callers count them as such.
        failure ??= 'the generator closed the connection';
        calls.clear();
        waitingForStream.length = 0;
        socket.destroy();
      },
    };

    // Our receive windows as large as HTTP/2 allows, so the server never waits on us.
    socket.write(
      Buffer.concat([
        clientPreface,
        frame(frameType.settings, 0, 0, settingsPayload([[0x2, 0], [0x4, largestWindow]])),
        frame(frameType.windowUpdate, 0, 0, uint32(largestWindow - defaultWindow)),
      ]),
    );
  });
}

const settingsMaxConcurrentStreams = 0x3;

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(frameHeaderLength);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

function settingsPayload(entries: ReadonlyArray<readonly [number, number]>): Buffer {
  const payload = Buffer.alloc(entries.length * 6);
  entries.forEach(([id, value], index) => {
    payload.writeUInt16BE(id, index * 6);
    payload.writeUInt32BE(value, index * 6 + 2);
  });
  return payload;
}

function uint32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  return bytes;
}

/**
 * HEADERS then DATA for one call, stream id 0 to be filled in. The header block uses
 * no dynamic table (indexed static entries and literals without indexing, RFC 7541),
 * so the same bytes are valid on every stream.
 */
function requestTemplate(request: H2cRequest): { bytes: Buffer; headersStreamIdOffset: number; dataStreamIdOffset: number } {
  const block = Buffer.concat([
    Buffer.from([0x83, 0x86]), // :method POST, :scheme http (static table 3 and 6)
    literalWithIndexedName(4, request.path), // :path
    literalWithIndexedName(1, `${request.host}:${request.port}`), // :authority
    ...Object.entries(request.headers).map(([name, value]) => literalWithNewName(name.toLowerCase(), value)),
  ]);
  const headers = frame(frameType.headers, flag.endHeaders, 0, block);
  const data = frame(frameType.data, flag.endStream, 0, request.body);
  return { bytes: Buffer.concat([headers, data]), headersStreamIdOffset: 5, dataStreamIdOffset: headers.length + 5 };
}

function literalWithIndexedName(staticIndex: number, value: string): Buffer {
  return Buffer.concat([hpackInteger(staticIndex, 4, 0x00), hpackString(value)]);
}

function literalWithNewName(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x00]), hpackString(name), hpackString(value)]);
}

/** A string literal without Huffman coding. */
function hpackString(text: string): Buffer {
  const bytes = Buffer.from(text, 'latin1');
  return Buffer.concat([hpackInteger(bytes.length, 7, 0x00), bytes]);
}

/** RFC 7541 §5.1: an integer with an N-bit prefix; `high` holds the bits above the prefix. */
function hpackInteger(value: number, prefixBits: number, high: number): Buffer {
  const limit = 2 ** prefixBits - 1;
  if (value < limit) return Buffer.from([high | value]);
  const bytes = [high | limit];
  let rest = value - limit;
  while (rest >= 128) {
    bytes.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}
