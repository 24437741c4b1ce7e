// When Tally traces, from the standard OTEL_* variables: off unless an OTLP
// endpoint or exporter is asked for, the specification's defaults otherwise,
// and a bad value refused with the variable's name, as TALLY_* settings are.

import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { readTracingSettings } from '../../src/transport/telemetry/tracing-settings.js';

const ENDPOINT = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' };

describe('readTracingSettings', () => {
  it.each([
    ['nothing set', {}],
    ['only a sampler set', { OTEL_TRACES_SAMPLER: 'always_on' }],
    ['empty values', { OTEL_EXPORTER_OTLP_ENDPOINT: '', OTEL_TRACES_EXPORTER: '' }],
    ['OTEL_TRACES_EXPORTER=none, even with an endpoint', { ...ENDPOINT, OTEL_TRACES_EXPORTER: 'none' }],
    ['OTEL_SDK_DISABLED=true, even with an endpoint', { ...ENDPOINT, OTEL_SDK_DISABLED: 'TRUE' }],
  ])('is off with %s', (_case, env) => {
    expect(readTracingSettings(env)).toBeUndefined();
  });

  it.each([
    ['an endpoint', ENDPOINT],
    ['a traces endpoint', { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }],
    ['OTEL_TRACES_EXPORTER=otlp alone (the exporter then sends to localhost)', { OTEL_TRACES_EXPORTER: 'otlp' }],
  ])('is on with %s, with the specification\'s defaults', (_case, env) => {
    expect(readTracingSettings(env)).toEqual({
      protocol: 'http/protobuf',
      sampler: { kind: 'parentbased_always_on' },
      joinCallerTraces: true,
      batch: { scheduledDelayMillis: 5_000, exportTimeoutMillis: 30_000, maxQueueSize: 2_048, maxExportBatchSize: 512 },
    });
  });

  it('takes the protocol, sampler, propagators and batch settings given', () => {
    expect(
      readTracingSettings({
        ...ENDPOINT,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0.25',
        OTEL_PROPAGATORS: 'none',
        OTEL_BSP_SCHEDULE_DELAY: '100',
        OTEL_BSP_EXPORT_TIMEOUT: '2000',
        OTEL_BSP_MAX_QUEUE_SIZE: '10',
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '5',
      }),
    ).toEqual({
      protocol: 'http/json',
      sampler: { kind: 'parentbased_traceidratio', ratio: 0.25 },
      joinCallerTraces: false,
      batch: { scheduledDelayMillis: 100, exportTimeoutMillis: 2_000, maxQueueSize: 10, maxExportBatchSize: 5 },
    });
  });

  it.each([
    [{ OTEL_TRACES_EXPORTER: 'zipkin' }, 'OTEL_TRACES_EXPORTER: "zipkin" is not an exporter Tally has'],
    [{ ...ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL: 'http' }, 'OTEL_EXPORTER_OTLP_PROTOCOL: "http" is not one of'],
    [{ ...ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'udp' }, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "udp" is not one of'],
    [{ ...ENDPOINT, OTEL_TRACES_SAMPLER: 'jaeger_remote' }, 'OTEL_TRACES_SAMPLER: "jaeger_remote" is not one of'],
    [{ ...ENDPOINT, OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '2' }, 'OTEL_TRACES_SAMPLER_ARG: "2" is not a ratio from 0 to 1'],
    [{ ...ENDPOINT, OTEL_PROPAGATORS: 'b3' }, 'OTEL_PROPAGATORS: "b3" is not supported'],
    [{ ...ENDPOINT, OTEL_BSP_SCHEDULE_DELAY: '1s' }, 'OTEL_BSP_SCHEDULE_DELAY: "1s" is not a whole number'],
    [{ ...ENDPOINT, OTEL_BSP_MAX_QUEUE_SIZE: '0' }, 'OTEL_BSP_MAX_QUEUE_SIZE: "0" is not a whole number of at least 1'],
    [{ OTEL_SDK_DISABLED: 'yes' }, 'OTEL_SDK_DISABLED: "yes" is not true or false'],
  ])('refuses %o naming the variable', (env, problem) => {
    let thrown: unknown;
    try {
      readTracingSettings(env);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as ConfigError).problems.join('\n')).toContain(problem);
  });

  it('refuses a bad value even while tracing is off, so a typo does not wait for the day tracing is turned on', () => {
    expect(() => readTracingSettings({ OTEL_TRACES_SAMPLER: 'always' })).toThrow(ConfigError);
  });
});
