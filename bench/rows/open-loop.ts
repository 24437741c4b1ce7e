// Latency at a fixed offered rate, without coordinated omission: the open-loop
// generator (lib/open-loop.ts) sends calls evenly spaced at 25% and 50% of the
// rate the bare server reached at its peak in this run, and counts each call's
// latency from when it was meant to be sent. The bare server at 25% comes first and
// checks the generator itself: if it cannot send that rate against a server that
// does nothing, that row fails and every other open-loop row says it is unchecked.
import type { BenchContext } from '../lib/context.js';
import { measureOpenLoop } from '../lib/measure-open-loop.js';
import { tallyIntrospectCall } from '../lib/measure-tally-introspect.js';
import type { GrpcUnaryCall } from '../lib/measure-grpc-unary.js';
import type { Measurement, Row } from '../lib/row.js';
import { bareGrpcIntrospect, bareIntrospectCall, measureBareGrpcIntrospect } from './bare-grpc-introspect.js';

/** How close to the asked rate the generator must send against the bare server. */
const selfCheckRateTolerance = 0.03;

type Subject = 'bare' | 'cache off' | 'cache hit';

const subjects: Record<Subject, { name: string; slug: string; call: (context: BenchContext, slug: string) => Promise<GrpcUnaryCall> }> = {
  bare: {
    name: 'bare grpc-js, no-op Introspect',
    slug: 'bare-grpc',
    call: async (context, slug) => bareIntrospectCall(slug, await context.bareGrpcServer()),
  },
  'cache off': {
    name: 'Tally gRPC Introspect, opaque, cache off',
    slug: 'tally-cache-off',
    call: async (context, slug) => {
      const [tally, issued] = await Promise.all([context.tally(), context.opaqueToken()]);
      return tallyIntrospectCall(slug, tally, issued);
    },
  },
  'cache hit': {
    name: 'Tally gRPC Introspect, opaque, cache hit',
    slug: 'tally-cache-hit',
    call: async (context, slug) => {
      const [tally, issued] = await Promise.all([context.cachedTally(), context.opaqueToken()]);
      return tallyIntrospectCall(slug, tally, issued);
    },
  },
};

/** A share of the bare server's peak in this run, in whole calls per second. */
async function shareOfBarePeak(context: BenchContext, share: number): Promise<{ peak: number; rate: number }> {
  const peak = (await context.measure(bareGrpcIntrospect)).callsPerSecond;
  return { peak, rate: Math.max(1, Math.round(peak * share)) };
}

function percent(share: number): string {
  return `${Math.round(share * 100)}%`;
}

function openLoopRow(subject: Subject, share: number, role: 'self-check' | 'measured' = 'measured'): Row {
  const { name, slug, call } = subjects[subject];
  return {
    name: `open loop at ${percent(share)} of the bare peak: ${name}`,
    description:
      `${name}, offered ${percent(share)} of the calls/s the bare server reached at its peak in this run by the open-loop generator ` +
      '(calls evenly spaced whatever the answers, latency from each call\'s intended send time, so a stall counts against every call behind it); ' +
      'calls/s is the rate it sent',
    async measure(context): Promise<Measurement> {
      const isSelfCheck = role === 'self-check';
      const check = isSelfCheck ? undefined : await generatorCheck(context);
      const checkFailed = check !== undefined && !check.passed ? check.note : undefined;
      const { peak, rate } = await shareOfBarePeak(context, share);
      const measurement = await measureOpenLoop(context, { ...(await call(context, `open-loop-${percent(share).replace('%', '')}-${slug}`)), callsPerSecond: rate });
      if (isSelfCheck) checkGenerator(measurement, rate);
      return {
        ...measurement,
        notes: [
          `${percent(share)} of the bare peak of ${Math.round(peak).toLocaleString('en-US')} calls/s`,
          ...(check === undefined
            ? []
            : check.passed
              ? [`the generator passed its check on the bare server in this run (${check.note})`]
              : [`UNCHECKED: the generator failed its check on the bare server in this run (${check.note}); a generator behind its schedule only adds latency, so these figures are upper bounds`]),
          ...measurement.notes,
        ],
        ...(checkFailed === undefined ? {} : { generatorCheckFailed: checkFailed }),
      };
    },
  };
}

/**
 * Against the no-op server the generator must have sent the asked rate and had every call
 * answered. A send lag over the limit is flagged in the table, not failed: on a shared
 * machine it says the generator lost its core for a while, which the latency then shows.
 */
function checkGenerator(measurement: Measurement, rate: number): void {
  const result = measurement.openLoop!;
  const off = Math.abs(result.achievedCallsPerSecond / rate - 1);
  const problems = [
    ...(off > selfCheckRateTolerance
      ? [`it sent ${result.achievedCallsPerSecond.toFixed(0)} calls/s, ${(off * 100).toFixed(1)}% off the ${rate} asked (allowed ${selfCheckRateTolerance * 100}%)`]
      : []),
    ...(result.unanswered > 0 ? [`${result.unanswered} calls to the no-op server went unanswered`] : []),
  ];
  if (problems.length > 0) {
    const { latency } = result;
    throw new Error(
      `the open-loop generator failed its check on the bare server: ${problems.join('; ')} ` +
        `(measured meanwhile: p50 ${latency.p50.toFixed(2)} ms, p99 ${latency.p99.toFixed(2)} ms from the intended send times` +
        `${result.saturated === undefined ? '' : `; ${result.saturated}`})`,
    );
  }
}

/**
 * How the generator did in its check on the bare server in this run. The other open-loop
 * rows measure either way, marked when it failed: a generator that falls behind only ever
 * adds to the latency it reports, so their figures remain upper bounds.
 */
async function generatorCheck(context: BenchContext): Promise<{ passed: boolean; note: string }> {
  try {
    const { openLoop } = await context.measure(openLoopSelfCheck);
    return { passed: true, note: `sent ${Math.round(openLoop!.achievedCallsPerSecond)} of ${openLoop!.targetCallsPerSecond} calls/s, all answered right` };
  } catch (error) {
    return { passed: false, note: (error as Error).message.replace('the open-loop generator failed its check on the bare server: ', '') };
  }
}

export const openLoopSelfCheck = openLoopRow('bare', 0.25, 'self-check');

// An independent generator at the same rate: h2load paces --rps per connection and
// times each call from its actual send, so on a server with headroom its figures
// should land near the open-loop ones; far apart, one of the two is wrong.
export const openLoopH2loadCheck: Row = {
  name: 'open loop check: h2load --rps at 25% of the bare peak, bare grpc-js',
  description:
    'the bare server offered the same rate as the open-loop generator\'s check row, by h2load --rps (the generator\'s connections, -m as the peak rows): ' +
    'an independent measurement of the same thing; h2load times each call from its actual send',
  async measure(context): Promise<Measurement> {
    const { peak, rate } = await shareOfBarePeak(context, 0.25);
    const connections = context.settings.openLoopConnections;
    const ratePerConnection = Math.max(1, Math.round(rate / connections));
    const measurement = await measureBareGrpcIntrospect(context, 'open-loop-25-h2load-bare-grpc', ratePerConnection, connections);
    const openLoop = await context.measure(openLoopSelfCheck).then(
      (figures) => `p50 ${figures.p50Milliseconds.toFixed(2)} ms, p99 ${figures.p99Milliseconds.toFixed(2)} ms`,
      (error: unknown) => `failed its check: ${(error as Error).message}`,
    );
    return {
      ...measurement,
      notes: [
        `offered ${(ratePerConnection * connections).toLocaleString('en-US')} calls/s (${ratePerConnection} on each of ${connections} connections), 25% of the bare peak of ${Math.round(peak).toLocaleString('en-US')}`,
        `the open-loop generator at the same rate: ${openLoop}`,
        ...measurement.notes,
      ],
    };
  },
};

export const openLoopBareHalf = openLoopRow('bare', 0.5);
export const openLoopCacheOffQuarter = openLoopRow('cache off', 0.25);
export const openLoopCacheOffHalf = openLoopRow('cache off', 0.5);
export const openLoopCacheHitQuarter = openLoopRow('cache hit', 0.25);
export const openLoopCacheHitHalf = openLoopRow('cache hit', 0.5);
