// What the OAuth endpoints (RFC 7662 introspection, RFC 7009 revocation)
// share: the call pipeline's steps (pipeline.ts: begun with the request,
// client authentication at step 3, ended with the answer), the form body read
// within a limit, and errors in RFC 6749 §5.2's shape. Failures answer fixed
// texts: a token never reaches a message.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { Code, ConnectError } from '@connectrpc/connect';
import type { Caller } from '../../auth/callers.js';
import type { CallDetails } from '../call/call-details.js';
import { codeOfHttpStatus, httpStatusOf, toConnectError } from '../call/errors.js';
import type { Call, CallPipeline } from '../call/pipeline.js';
import type { Route } from './router.js';
import { peerInfoOf } from './server.js';

/** A plain HTTP call in progress: what it has learnt, for its log line. */
export interface EndpointCall {
  call: Call;
  details: CallDetails;
  /** The failure behind a non-2xx answer, with its cause, for the log only. */
  error?: ConnectError;
}

export type EndpointHandler = (request: IncomingMessage, response: ServerResponse, call: EndpointCall) => Promise<void>;

/** A route whose every request is a call of the pipeline, named `METHOD /path`. */
export function pipelineRoute(method: Route['method'], path: string, pipeline: CallPipeline, handle: EndpointHandler): Route {
  const name = `${method} ${path}`;
  return {
    method,
    path,
    handle: async (request, response) => {
      const call = pipeline.begin(name, 'http', peerInfoOf(request), request.headers['x-request-id'], request.headers);
      const endpoint: EndpointCall = { call, details: call.details };
      response.once('close', () => {
        const status = response.statusCode;
        const code = !response.writableFinished ? Code.Canceled : codeOfHttpStatus(status);
        call.end(code, code === 0 ? undefined : (endpoint.error ?? new ConnectError(`answered HTTP ${status}`, code)), status);
      });
      call.startSpan();
      await call.run(() => handle(request, response, endpoint));
    },
  };
}

export function writeJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  writeJsonText(response, status, JSON.stringify(body), headers);
}

/** As writeJson, for a body already written as JSON. */
export function writeJsonText(response: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  // Token answers must not be kept by any cache on the way (RFC 6749 §5.1).
  response.writeHead(status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  response.end(text);
}

function writeOAuthError(response: ServerResponse, status: number, error: string, description: string, headers: Record<string, string> = {}): void {
  writeJson(response, status, { error, error_description: description }, headers);
}

/**
 * The caller, through the same guard as every RPC (step 3); or undefined once
 * the refusal is written: 401 invalid_client with a challenge in the scheme
 * the client tried (RFC 6749 §5.2), or 403 when it lacks the permission.
 */
function authenticateClient(request: IncomingMessage, response: ServerResponse, endpoint: EndpointCall): Caller | undefined {
  const authorization = request.headers.authorization;
  try {
    return endpoint.call.authenticate(authorization);
  } catch (thrown) {
    const error = toConnectError(thrown);
    endpoint.error = error;
    if (error.code === Code.PermissionDenied) {
      writeOAuthError(response, 403, 'unauthorized_client', error.rawMessage);
    } else if (error.code === Code.Unauthenticated) {
      const scheme = /^bearer /i.test(authorization ?? '') ? 'Bearer' : 'Basic';
      writeOAuthError(response, 401, 'invalid_client', error.rawMessage, { 'www-authenticate': `${scheme} realm="tally"` });
    } else {
      writeFailure(response, endpoint, thrown);
    }
    return undefined;
  }
}

/** A failure of the service itself (store down, bug), answered as RFC 6749 would and logged with its cause. */
export function writeFailure(response: ServerResponse, endpoint: EndpointCall, thrown: unknown): void {
  const error = toConnectError(thrown);
  endpoint.error = error;
  const status = httpStatusOf(error.code);
  if (error.code === Code.Unavailable) writeOAuthError(response, 503, 'temporarily_unavailable', error.rawMessage, { 'retry-after': '1' });
  // RFC 6749 has no error code for a rate limit; invalid_request with 429 and Retry-After is what clients handle.
  else if (error.code === Code.ResourceExhausted) writeOAuthError(response, 429, 'invalid_request', error.rawMessage, { 'retry-after': '1' });
  else if (status >= 400 && status < 500) writeOAuthError(response, status, 'invalid_request', error.rawMessage);
  else writeOAuthError(response, 500, 'server_error', 'internal error');
}

export type FormResult = { ok: true; form: Map<string, string> } | { ok: false };

/**
 * The application/x-www-form-urlencoded body, or ok:false once the refusal is
 * written: 415 for another content type or a compressed body, 413 past maxBytes, 400 for a
 * parameter sent twice (RFC 6749 §3.2).
 */
async function readForm(request: IncomingMessage, response: ServerResponse, endpoint: EndpointCall, maxBytes: number): Promise<FormResult> {
  const contentType = (request.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
  if (contentType !== 'application/x-www-form-urlencoded') {
    endpoint.error = new ConnectError('the body must be application/x-www-form-urlencoded', Code.InvalidArgument);
    writeOAuthError(response, 415, 'invalid_request', endpoint.error.rawMessage, { accept: 'application/x-www-form-urlencoded' });
    return { ok: false };
  }
  const contentEncoding = (request.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (contentEncoding !== 'identity') {
    // RFC 7694: the body is not read at all, so no coding can expand it; the answer names what is accepted.
    endpoint.error = new ConnectError('the body must not be compressed (Content-Encoding: identity)', Code.InvalidArgument);
    writeOAuthError(response, 415, 'invalid_request', endpoint.error.rawMessage, { 'accept-encoding': 'identity', connection: 'close' });
    return { ok: false };
  }
  const tooLarge = () => {
    endpoint.error = new ConnectError(`the body is larger than ${maxBytes} bytes`, Code.ResourceExhausted);
    // The rest of the body is not read, so the connection cannot carry another request.
    writeOAuthError(response, 413, 'invalid_request', endpoint.error.rawMessage, { connection: 'close' });
    return { ok: false } as const;
  };
  if (Number(request.headers['content-length'] ?? 0) > maxBytes) return tooLarge();
  const body = await readBody(request, maxBytes);
  if (body === 'too large') return tooLarge();
  const form = new Map<string, string>();
  for (const [name, value] of new URLSearchParams(body.toString('utf8'))) {
    if (form.has(name)) {
      endpoint.error = new ConnectError(`the parameter "${name.slice(0, 64)}" is repeated`, Code.InvalidArgument);
      writeOAuthError(response, 400, 'invalid_request', endpoint.error.rawMessage);
      return { ok: false };
    }
    form.set(name, value);
  }
  return { ok: true, form };
}

/**
 * The body, or 'too large' as soon as it passes maxBytes. Reading stops
 * there without destroying the request, so the 413 still reaches the client.
 */
function readBody(request: IncomingMessage, maxBytes: number): Promise<Buffer | 'too large'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = () => {
      request.off('data', onData);
      request.off('end', onEnd);
      request.off('error', onError);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) {
        chunks.push(chunk);
        return;
      }
      stop();
      request.pause();
      resolve('too large');
    };
    const onEnd = () => {
      stop();
      resolve(Buffer.concat(chunks));
    };
    const onError = (error: Error) => {
      stop();
      reject(error);
    };
    request.on('data', onData);
    request.once('end', onEnd);
    request.once('error', onError);
  });
}

/**
 * The start both token endpoints share (RFC 7662 §2.1, RFC 7009 §2.1): the
 * caller authenticated (step 3), then the form with its required "token"
 * parameter (step 4). Undefined once a refusal has been written.
 */
export async function readTokenRequest(
  request: IncomingMessage,
  response: ServerResponse,
  endpoint: EndpointCall,
  maxBodyBytes: number,
): Promise<{ caller: Caller; token: string } | undefined> {
  const caller = authenticateClient(request, response, endpoint);
  if (caller === undefined) return undefined;
  const body = await readForm(request, response, endpoint, maxBodyBytes);
  if (!body.ok) return undefined;
  const token = body.form.get('token') ?? '';
  if (token === '') {
    writeOAuthError(response, 400, 'invalid_request', 'the "token" parameter is required');
    return undefined;
  }
  return { caller, token };
}
