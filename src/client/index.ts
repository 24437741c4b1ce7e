// The typed client internal services use to call Tally: Connect's client over
// the gRPC protocol (so it talks to the fast grpc-js port), with a deadline
// on every call, the caller's API key, TLS when the URL is https, and retries
// with backoff on UNAVAILABLE for the calls the proto declares safe to repeat
// (Introspect, ListKeys: no side effects; Revoke, RevokeKey, SetDefaultAlgorithm:
// idempotent). Issue, RotateKeys and RetireAlgorithm are never retried: a lost
// answer must not mint twice.
//
//   import { createTallyClient } from 'tally/client';
//   const tally = createTallyClient({ baseUrl: 'https://tally:50051', apiKey });
//   const { active, subject } = await tally.introspect({ token });
//
// With `localView`, introspect answers from an exact, leased cache in this
// process (local-view.ts; docs/clients.md says when to turn it on).

import { readFileSync } from 'node:fs';
import { Code, ConnectError, createClient, type Client, type Interceptor } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { MethodOptions_IdempotencyLevel } from '@bufbuild/protobuf/wkt';
import { TokenService } from '../gen/tally/v1/token_service_pb.js';
import { startLocalView, type LocalView, type LocalViewOptions } from './local-view.js';

export { Code, ConnectError } from '@connectrpc/connect';
export * from '../gen/tally/v1/token_service_pb.js';
export type { LocalView, LocalViewChange, LocalViewOptions } from './local-view.js';

export type TallyClient = Client<typeof TokenService>;

/** A client whose introspect answers from its local view while that view is fresh. */
export type TallyClientWithLocalView = TallyClient & { readonly localView: LocalView };

export interface RetryOptions {
  /** Attempts in all, the first included (default 4; 1 turns retries off). */
  maxAttempts?: number;
  /** Backoff before the first retry (default 50 ms); doubles each time, with full jitter. */
  initialBackoffMs?: number;
  /** Longest backoff (default 1 s). */
  maxBackoffMs?: number;
  /** Told before each retry (and awaited): for logs and metrics of the calling service. */
  onRetry?: (event: { method: string; attempt: number; delayMs: number; error: ConnectError }) => void | Promise<void>;
}

export interface TlsOptions {
  /** PEM of the CA that signed Tally's certificate, or a path to it (default: the system's CAs). */
  ca?: string | Buffer;
  /** PEM (or path) of this service's client certificate and key, for mTLS callers. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** The name to check Tally's certificate against, when it differs from the URL's host. */
  serverName?: string;
}

export interface TallyClientOptions {
  /** `http://host:50051`, or `https://host:50051` for TLS. */
  baseUrl: string;
  /** Sent as `authorization: Bearer <apiKey>`. Omit when the caller is known by its client certificate. */
  apiKey?: string;
  /** Deadline of a call, retries included, unless the call sets its own (default 2 s). */
  timeoutMs?: number;
  retry?: RetryOptions;
  tls?: TlsOptions;
  /**
   * Answer introspect from a bounded in-process cache of active answers,
   * kept exact by watching revocations (WatchRevocations, which needs the
   * `introspect` permission). Close it (`client.localView.close()`) when done:
   * the watch keeps the process alive.
   */
  localView?: LocalViewOptions | true;
}

export const DEFAULT_TIMEOUT_MS = 2_000;
const DEFAULT_RETRY = { maxAttempts: 4, initialBackoffMs: 50, maxBackoffMs: 1_000 };

export function createTallyClient(options: TallyClientOptions & { localView: LocalViewOptions | true }): TallyClientWithLocalView;
export function createTallyClient(options: TallyClientOptions): TallyClient;
export function createTallyClient(options: TallyClientOptions): TallyClient | TallyClientWithLocalView {
  const interceptors: Interceptor[] = [retryUnavailable({ ...DEFAULT_RETRY, ...options.retry })];
  if (options.apiKey !== undefined) interceptors.push(withApiKey(options.apiKey));
  const transport = createGrpcTransport({
    baseUrl: options.baseUrl,
    defaultTimeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    interceptors,
    nodeOptions: options.tls === undefined ? undefined : tlsNodeOptions(options.tls),
  });
  const client = createClient(TokenService, transport);
  if (options.localView === undefined) return client;
  const localView = startLocalView(client, options.localView === true ? {} : options.localView);
  return { ...client, introspect: localView.introspect, localView };
}

function withApiKey(apiKey: string): Interceptor {
  return (next) => (request) => {
    request.header.set('authorization', `Bearer ${apiKey}`);
    return next(request);
  };
}

function retryUnavailable(retry: Required<Omit<RetryOptions, 'onRetry'>> & Pick<RetryOptions, 'onRetry'>): Interceptor {
  return (next) => async (request) => {
    const repeatable = request.method.idempotency !== MethodOptions_IdempotencyLevel.IDEMPOTENCY_UNKNOWN;
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await next(request);
      } catch (thrown) {
        const error = ConnectError.from(thrown);
        if (!repeatable || error.code !== Code.Unavailable || attempt >= retry.maxAttempts || request.signal.aborted) throw error;
        const ceiling = Math.min(retry.maxBackoffMs, retry.initialBackoffMs * 2 ** (attempt - 1));
        // Full jitter: replicas that failed together do not come back together.
        const delayMs = Math.round(Math.random() * ceiling);
        await retry.onRetry?.({ method: `${request.service.typeName}/${request.method.name}`, attempt, delayMs, error });
        await delay(delayMs, request.signal);
      }
    }
  };
}

/** Waits, or rejects with the deadline's error as soon as the call's signal fires. */
function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(ConnectError.from(signal.reason ?? new ConnectError('the call was cancelled', Code.Canceled)));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function pem(value: string | Buffer | undefined): string | Buffer | undefined {
  if (value === undefined || Buffer.isBuffer(value) || value.includes('-----BEGIN')) return value;
  return readFileSync(value);
}

function tlsNodeOptions(tls: TlsOptions) {
  return { ca: pem(tls.ca), cert: pem(tls.cert), key: pem(tls.key), servername: tls.serverName };
}
