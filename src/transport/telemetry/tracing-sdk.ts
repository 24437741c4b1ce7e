// Tracing on: the OpenTelemetry SDK, loaded by tracing.ts only when the
// settings ask for it. Spans follow the OpenTelemetry semantic conventions
// for RPC servers (rpc.system.name, rpc.method, rpc.status_code) and HTTP
// servers (http.request.method, http.route, http.response.status_code); the
// tally.* attributes say what only Tally knows (tracing.ts says what a span
// may carry). The call in progress is found through Tally's own
// AsyncLocalStorage, so no global context manager is installed.

import { AsyncLocalStorage } from 'node:async_hooks';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Code } from '@connectrpc/connect';
import { diag, DiagLogLevel, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags, type Attributes, type Context } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { defaultResource, detectResources, envDetector, hostDetector, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type Sampler,
  type SpanExporter,
} from '@opentelemetry/sdk-trace';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_RPC_METHOD,
  ATTR_RPC_STATUS_CODE,
  ATTR_RPC_SYSTEM_NAME,
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_VERSION,
} from '@opentelemetry/semantic-conventions';
import type { TraceStep } from '../../core/ports.js';
import type { CallRecord } from '../call/call-log.js';
import { codeName } from '../call/errors.js';
import type { CallSpan, CallStart, HeaderReader, Tracing, TracingOptions } from './tracing.js';
import type { OtlpProtocol, SamplerSetting, TracingSettings } from './tracing-settings.js';

const SERVICE_NAME = 'tally';

/** Failures that are the server's, as the RPC conventions list them for gRPC: the span's status is Error. */
const SERVER_ERROR_CODES: ReadonlySet<Code | 0> = new Set([
  Code.Unknown,
  Code.DeadlineExceeded,
  Code.Unimplemented,
  Code.Internal,
  Code.Unavailable,
  Code.DataLoss,
]);

export async function startTracing(settings: TracingSettings, options: TracingOptions): Promise<Tracing> {
  // The exporter reports its failures (a collector that does not answer) through diag only.
  const report = (...args: unknown[]) => options.onExportError(args.map(messageOf).join(' '));
  const ignore = () => {};
  diag.setLogger({ error: report, warn: report, info: ignore, debug: ignore, verbose: ignore }, DiagLogLevel.WARN);

  const provider = new TracerProvider({
    resource: defaultResource()
      .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: SERVICE_NAME, [ATTR_SERVICE_VERSION]: packageVersion() }))
      // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over Tally's own.
      .merge(detectResources({ detectors: [hostDetector, envDetector] })),
    sampler: samplerOf(settings.sampler),
    spanProcessors: [new BatchSpanProcessor({ exporter: await exporterFor(settings.protocol), ...settings.batch })],
  });
  const tracer = provider.getTracer(SERVICE_NAME, packageVersion());
  const propagator = new W3CTraceContextPropagator();
  const knownMethods = new Set(options.knownMethods);
  const currentCall = new AsyncLocalStorage<Context>();

  const callerContext = (carriers: readonly HeaderReader[]): Context => {
    if (!settings.joinCallerTraces) return ROOT_CONTEXT;
    const carrier = carriers.find((read) => read('traceparent') !== undefined);
    if (carrier === undefined) return ROOT_CONTEXT;
    return propagator.extract(ROOT_CONTEXT, carrier, { get: (read, key) => read(key), keys: () => [] });
  };

  const startCall = ({ method, protocol, carriers }: CallStart): CallSpan => {
    const parent = callerContext(carriers);
    const http = protocol === 'http';
    const known = knownMethods.has(method);
    const attributes: Attributes = { 'tally.protocol': protocol };
    let name: string;
    if (http) {
      const [verb = '', route = ''] = method.split(' ', 2);
      attributes[ATTR_HTTP_REQUEST_METHOD] = verb;
      if (known) attributes[ATTR_HTTP_ROUTE] = route;
      name = known ? method : verb;
    } else {
      const system = protocol === 'connect' ? 'connectrpc' : 'grpc';
      attributes[ATTR_RPC_SYSTEM_NAME] = system;
      // A method the client made up is never recorded as it came: it is the client's text, of any size.
      attributes[ATTR_RPC_METHOD] = known ? method : '_OTHER';
      name = known ? method : system;
    }
    const span = tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
    const context = trace.setSpan(parent, span);
    const { traceId, spanId, traceFlags } = span.spanContext();
    const sampled = (traceFlags & TraceFlags.SAMPLED) !== 0;
    const joined = trace.getSpanContext(parent) !== undefined;
    return {
      // A trace id that nothing recorded is worth logging only when the caller's trace has it.
      traceId: sampled || joined ? traceId : undefined,
      spanId: sampled ? spanId : undefined,
      run: (handler) => currentCall.run(context, handler),
      end: (record) => {
        if (span.isRecording()) span.setAttributes(outcomeAttributes(record, http));
        if (isServerFault(record, http)) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
      },
    };
  };

  const traceStep: TraceStep = <T>(name: string, attributes: Readonly<Record<string, string>>, run: () => Promise<T>): Promise<T> => {
    const parent = currentCall.getStore();
    // Outside a recorded call (background work, an unsampled call) a step is not worth a span.
    if (parent === undefined || trace.getSpan(parent)?.isRecording() !== true) return run();
    const span = tracer.startSpan(name, { kind: SpanKind.INTERNAL, attributes }, parent);
    let running: Promise<T>;
    try {
      running = run();
    } catch (error) {
      running = Promise.reject(error);
    }
    return running.then(
      (result) => {
        span.end();
        return result;
      },
      (error: unknown) => {
        span.setAttribute(ATTR_ERROR_TYPE, error instanceof Error ? error.name : '_OTHER');
        span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
        throw error;
      },
    );
  };

  return {
    startCall,
    traceStep,
    endingSpans: (logCall) => (record) => {
      record.details.trace?.end(record);
      logCall(record);
    },
    async shutdown(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        provider.shutdown().catch((error: unknown) => options.onExportError(`flushing the last spans failed: ${String(error)}`)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
      ]);
      clearTimeout(timer);
    },
  };
}

/** The SDK hands errors to diag as JSON with their stack: the message is what the log needs. */
function messageOf(argument: unknown): string {
  if (argument instanceof Error) return argument.message;
  if (typeof argument !== 'string') return String(argument);
  try {
    const parsed = JSON.parse(argument) as { message?: unknown };
    return typeof parsed.message === 'string' ? parsed.message : argument;
  } catch {
    return argument;
  }
}

/** The outcome of a call, as the log line has it: no message, no cause, nothing the caller sent. */
function outcomeAttributes(record: CallRecord, http: boolean): Attributes {
  const { code, details } = record;
  const attributes: Attributes = { 'tally.caller': details.caller };
  if (details.active !== undefined) attributes['tally.introspection.active'] = details.active;
  if (http) {
    if (record.httpStatus !== undefined) attributes[ATTR_HTTP_RESPONSE_STATUS_CODE] = record.httpStatus;
    if (isServerFault(record, http)) attributes[ATTR_ERROR_TYPE] = String(record.httpStatus ?? 500);
  } else {
    // gRPC names its codes in capitals; the Connect protocol writes them in lower case.
    const status = record.protocol === 'connect' ? codeName(code) : codeName(code).toUpperCase();
    attributes[ATTR_RPC_STATUS_CODE] = status;
    if (isServerFault(record, http)) attributes[ATTR_ERROR_TYPE] = status;
  }
  return attributes;
}

function isServerFault(record: CallRecord, http: boolean): boolean {
  return http ? (record.httpStatus ?? 0) >= 500 : SERVER_ERROR_CODES.has(record.code);
}

function samplerOf(setting: SamplerSetting): Sampler {
  switch (setting.kind) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(setting.ratio);
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(setting.ratio) });
  }
}

/** The OTLP exporter of the protocol asked for; it reads OTEL_EXPORTER_OTLP_* (endpoint, headers, TLS, timeout, compression) itself. */
async function exporterFor(protocol: OtlpProtocol): Promise<SpanExporter> {
  switch (protocol) {
    case 'http/protobuf':
      return new (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter();
    case 'http/json':
      return new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter();
    case 'grpc':
      return new (await import('@opentelemetry/exporter-trace-otlp-grpc')).OTLPTraceExporter();
  }
}

let version: string | undefined;

/** Tally's version, from its package.json (beside dist/ in the image, beside src/ in a checkout). */
function packageVersion(): string {
  if (version !== undefined) return version;
  try {
    version = (JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    version = 'unknown';
  }
  return version;
}
