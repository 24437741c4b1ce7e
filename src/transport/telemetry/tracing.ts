// OpenTelemetry traces: a span per call, joined to the caller's W3C trace
// context, with child spans for the steps of the call (store operations,
// signatures). This file is what the rest of Tally sees; the SDK itself is
// loaded from tracing-sdk.ts only when tracing is on (tracing-settings.ts
// decides), so with tracing off no OpenTelemetry code is even loaded and a
// call pays one check of an undefined field.
//
// What a span may carry: the method, the protocol, the outcome (status code,
// and for introspections active or not), the caller's name, and for steps
// what they did (store operation, signing algorithm and kid). Never a token,
// an API key, a claim or a header value, and not why a token was inactive:
// a trace is often shown to every team whose service took part in it, so it
// is treated as the callers' surface, not the operators'. The call's log line
// carries the same trace id and the reason (call-log.ts).

import type { IncomingHttpHeaders } from 'node:http';
import type { TraceStep } from '../../core/ports.js';
import type { CallDetails } from '../call/call-details.js';
import type { CallLogger, CallRecord } from '../call/call-log.js';
import type { TracingSettings } from './tracing-settings.js';

/** One header (or gRPC metadata entry) of a call, by its lower-case name. */
export type HeaderReader = (name: string) => string | undefined;

export interface CallStart {
  /** As the log line names it: `tally.v1.TokenService/Issue`, `POST /oauth2/introspect`. */
  method: string;
  /** grpc, grpc-web, connect or http, as the log line says it. */
  protocol: string;
  /**
   * Where the caller's trace context may be, in order: the first that holds
   * a traceparent gives both traceparent and tracestate.
   */
  carriers: readonly HeaderReader[];
}

/** The span of one call. */
export interface CallSpan {
  /** For the log line: the trace this call is part of, when there is one to look up. */
  readonly traceId: string | undefined;
  /** For the log line: this call's span, when it is recorded. */
  readonly spanId: string | undefined;
  /** Runs the call's handler with this span current, so that its steps become its children. */
  run<T>(handler: () => T): T;
  /** Ends the span with the call's outcome, as its log line records it. */
  end(record: CallRecord): void;
}

export interface Tracing {
  startCall(call: CallStart): CallSpan;
  /** A step of the call in progress becomes a child span; outside a recorded call the step just runs. */
  readonly traceStep: TraceStep;
  /** The call logger, with each call's span ended as its line is written (every call writes exactly one). */
  endingSpans(logCall: CallLogger): CallLogger;
  /** Exports what is left and stops; gives up after timeoutMs. */
  shutdown(timeoutMs: number): Promise<void>;
}

export interface TracingOptions {
  /** Method names spans may be named after; any other is named as the conventions say for an unknown method. */
  knownMethods: readonly string[];
  /** The exporter's own failures (a collector that does not answer), for the log. */
  onExportError: (message: string) => void;
}

/** Tracing as the settings ask for it, or undefined when it is off. */
export async function createTracing(settings: TracingSettings | undefined, options: TracingOptions): Promise<Tracing | undefined> {
  if (settings === undefined) return undefined;
  const { startTracing } = await import('./tracing-sdk.js');
  return startTracing(settings, options);
}

/** Runs a call's handler in its span, when it has one. */
export function runInCallSpan<T>(details: CallDetails, handler: () => T): T {
  return details.trace === undefined ? handler() : details.trace.run(handler);
}

/** A call's own headers as its transport holds them: grpc-js Metadata, or Node.js request headers. */
export type CallHeaders = { get(key: string): unknown[] } | IncomingHttpHeaders;

/** A call's own headers as a carrier, made only when a span starts (so not at all with tracing off). */
export function carrierOf(headers: CallHeaders): HeaderReader {
  return typeof headers.get === 'function' ? metadataCarrier(headers as { get(key: string): unknown[] }) : headersCarrier(headers as IncomingHttpHeaders);
}

/** A grpc-js Metadata as a carrier: repeated text entries joined as HTTP joins repeated headers. */
function metadataCarrier(metadata: { get(key: string): unknown[] }): HeaderReader {
  return (name) => {
    const values = metadata.get(name).filter((value): value is string => typeof value === 'string');
    return values.length === 0 ? undefined : values.join(',');
  };
}

/** Node.js request headers as a carrier. */
function headersCarrier(headers: IncomingHttpHeaders): HeaderReader {
  return (name) => {
    const value = headers[name];
    return Array.isArray(value) ? value.join(',') : value;
  };
}
