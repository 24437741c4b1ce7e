// Whether Tally traces, and how, from the standard OTEL_* variables
// (opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/).
// Since version 3 the OpenTelemetry JS SDK packages read none of the SDK's own
// variables (only @opentelemetry/sdk-node does, with every signal and
// exporter besides), so the ones Tally honours are read here; the OTLP
// exporters still read OTEL_EXPORTER_OTLP_* themselves, and the resource
// detector OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
//
// Tracing is on only when asked for: an OTLP endpoint is set, or
// OTEL_TRACES_EXPORTER=otlp. The specification's default exporter is OTLP
// to localhost, but a Tally with nothing set must send nothing anywhere.
// A bad value stops start-up with a message that names the variable, as
// TALLY_* settings do.

import { ConfigError, type Environment } from '../../config.js';

export type OtlpProtocol = 'http/protobuf' | 'http/json' | 'grpc';

export type SamplerSetting =
  | { kind: 'always_on' | 'always_off' | 'parentbased_always_on' | 'parentbased_always_off' }
  | { kind: 'traceidratio' | 'parentbased_traceidratio'; ratio: number };

export interface TracingSettings {
  protocol: OtlpProtocol;
  sampler: SamplerSetting;
  /** Join the caller's W3C trace context (OTEL_PROPAGATORS names tracecontext, the default). */
  joinCallerTraces: boolean;
  batch: {
    scheduledDelayMillis: number;
    exportTimeoutMillis: number;
    maxQueueSize: number;
    maxExportBatchSize: number;
  };
}

/** The OTEL_* variables Tally itself reads (the README's tracing table lists these and the exporter's own). */
export const TRACING_VARIABLES = {
  sdkDisabled: 'OTEL_SDK_DISABLED',
  exporter: 'OTEL_TRACES_EXPORTER',
  endpoint: 'OTEL_EXPORTER_OTLP_ENDPOINT',
  tracesEndpoint: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
  protocol: 'OTEL_EXPORTER_OTLP_PROTOCOL',
  tracesProtocol: 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL',
  sampler: 'OTEL_TRACES_SAMPLER',
  samplerArg: 'OTEL_TRACES_SAMPLER_ARG',
  propagators: 'OTEL_PROPAGATORS',
  scheduleDelay: 'OTEL_BSP_SCHEDULE_DELAY',
  exportTimeout: 'OTEL_BSP_EXPORT_TIMEOUT',
  maxQueueSize: 'OTEL_BSP_MAX_QUEUE_SIZE',
  maxExportBatchSize: 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE',
} as const;

const PROTOCOLS: readonly OtlpProtocol[] = ['http/protobuf', 'http/json', 'grpc'];
const SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;
/** Propagators Tally accepts: W3C trace context, or none. Baggage is accepted and has no use here. */
const PROPAGATORS = new Set(['tracecontext', 'baggage', 'none']);

/** The specification: an empty value means unset. */
function read(env: Environment, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

function list(value: string): string[] {
  return value.split(',').map((item) => item.trim().toLowerCase()).filter((item) => item !== '');
}

/** The tracing settings, or undefined when tracing is off. Throws ConfigError naming each bad variable. */
export function readTracingSettings(env: Environment): TracingSettings | undefined {
  const problems: string[] = [];
  const names = TRACING_VARIABLES;

  const disabled = read(env, names.sdkDisabled)?.toLowerCase();
  if (disabled !== undefined && disabled !== 'true' && disabled !== 'false') {
    problems.push(`${names.sdkDisabled}: "${disabled}" is not true or false`);
  }

  const exporters = list(read(env, names.exporter) ?? '');
  const unknownExporter = exporters.find((name) => name !== 'otlp' && name !== 'none');
  if (unknownExporter !== undefined) {
    problems.push(`${names.exporter}: "${unknownExporter}" is not an exporter Tally has; use otlp (or none)`);
  }
  const endpointSet = read(env, names.endpoint) !== undefined || read(env, names.tracesEndpoint) !== undefined;
  const on = disabled !== 'true' && (exporters.length === 0 ? endpointSet : exporters.includes('otlp'));

  const protocol = (read(env, names.tracesProtocol) ?? read(env, names.protocol) ?? 'http/protobuf').toLowerCase();
  if (!(PROTOCOLS as readonly string[]).includes(protocol)) {
    const variable = read(env, names.tracesProtocol) !== undefined ? names.tracesProtocol : names.protocol;
    problems.push(`${variable}: "${protocol}" is not one of ${PROTOCOLS.join(', ')}`);
  }

  const sampler = readSampler(env, problems);

  const propagators = list(read(env, names.propagators) ?? 'tracecontext,baggage');
  const unknownPropagator = propagators.find((name) => !PROPAGATORS.has(name));
  if (unknownPropagator !== undefined) {
    problems.push(`${names.propagators}: "${unknownPropagator}" is not supported; Tally reads W3C trace context (tracecontext) or none`);
  }

  const batch = {
    scheduledDelayMillis: readCount(env, names.scheduleDelay, 5_000, problems),
    exportTimeoutMillis: readCount(env, names.exportTimeout, 30_000, problems),
    maxQueueSize: readCount(env, names.maxQueueSize, 2_048, problems, 1),
    maxExportBatchSize: readCount(env, names.maxExportBatchSize, 512, problems, 1),
  };

  if (problems.length > 0) throw new ConfigError(problems);
  if (!on) return undefined;
  return { protocol: protocol as OtlpProtocol, sampler: sampler!, joinCallerTraces: propagators.includes('tracecontext'), batch };
}

function readSampler(env: Environment, problems: string[]): SamplerSetting | undefined {
  const names = TRACING_VARIABLES;
  const kind = (read(env, names.sampler) ?? 'parentbased_always_on').toLowerCase();
  if (!(SAMPLERS as readonly string[]).includes(kind)) {
    problems.push(`${names.sampler}: "${kind}" is not one of ${SAMPLERS.join(', ')}`);
    return undefined;
  }
  if (kind !== 'traceidratio' && kind !== 'parentbased_traceidratio') return { kind: kind as Exclude<SamplerSetting['kind'], 'traceidratio' | 'parentbased_traceidratio'> };
  const argument = read(env, names.samplerArg);
  const ratio = argument === undefined ? 1 : Number(argument);
  if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) {
    problems.push(`${names.samplerArg}: "${argument}" is not a ratio from 0 to 1`);
    return undefined;
  }
  return { kind, ratio };
}

function readCount(env: Environment, name: string, fallback: number, problems: string[], minimum = 0): number {
  const value = read(env, name);
  if (value === undefined) return fallback;
  const count = Number(value);
  if (!Number.isSafeInteger(count) || count < minimum) {
    problems.push(`${name}: "${value}" is not a whole number of at least ${minimum}`);
    return fallback;
  }
  return count;
}
