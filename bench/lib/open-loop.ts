// An open-loop gRPC load generator on raw HTTP/2: calls go out at a fixed rate,
// evenly spaced, whether or not earlier ones were answered, and each call's latency
// counts from the time it was meant to be sent. A closed-loop generator (h2load,
// wrk) waits for a free stream before it sends, so a server that stalls also stalls
// the clock of every call queued behind it ("coordinated omission"): the stall
// shows up once instead of in every call it delayed. Here a stall of X ms costs
// each call scheduled during it up to X ms, and so does a generator that falls
// behind its own schedule, which the result reports as saturation.
//
// Every answer is checked byte for byte against a verified one: exactly the expected
// response body, then trailers (h2c-connection.ts says why that is enough).
import { openH2cConnection, type CallOutcome } from './h2c-connection.js';
import { percentile } from './percentiles.js';

export interface OpenLoopOptions {
  /** http://host:port */
  readonly origin: string;
  readonly path: string;
  /** The request body: one gRPC frame, sent as is. */
  readonly body: Uint8Array;
  /** The response body every call must return: the verified answer's frames. */
  readonly expectedBody: Uint8Array;
  readonly headers: Readonly<Record<string, string>>;
  readonly callsPerSecond: number;
  /** Sent on the same schedule first and left out of every figure. */
  readonly warmUpSeconds: number;
  readonly durationSeconds: number;
  /** HTTP/2 connections; call i goes on connection i mod connections. */
  readonly connections: number;
  /** How long after the last scheduled send unanswered calls are still waited for. */
  readonly drainMilliseconds: number;
  /** The clock; performance.now unless a test wants another. */
  readonly now?: () => number;
}

export interface LatencySummary {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

export interface OpenLoopResult {
  readonly targetCallsPerSecond: number;
  /** Calls scheduled in the measured period (warm-up excluded). */
  readonly scheduled: number;
  /** Calls sent per second over the measured period: from its first scheduled send to its last actual send. */
  readonly achievedCallsPerSecond: number;
  /** Answered with the expected bytes, measured period only; a wrong answer's latency still counts. */
  readonly answered: number;
  /** Answers that were not the expected one, over warm-up and measured period alike. */
  readonly wrong: number;
  /** The first few wrong answers, described. */
  readonly wrongExamples: readonly string[];
  /** Still unanswered when the drain time ran out; their latency counts as the time waited (a lower bound). */
  readonly unanswered: number;
  /** From the intended send time to the end of the answer, in ms: what a caller on this schedule sees. */
  readonly latency: LatencySummary;
  /** From the actual send to the end of the answer, in ms: what a closed-loop generator would report. */
  readonly serviceTime: LatencySummary;
  /** How late the generator sent, in ms (actual minus intended send time). */
  readonly sendLag: LatencySummary;
  /** The generator's own CPU time over the run (user + system), as a share of one core. */
  readonly generatorCpuShare: number;
  /** Set when the generator could not keep the rate: then part of the latency is the generator's own. */
  readonly saturated?: string;
}

/** Under this share of the target rate, or over this send lag at p99, the generator did not keep its schedule. */
const saturationLimits = { achievedShare: 0.97, sendLagP99Milliseconds: 1 } as const;

/** When call `index` is due: evenly spaced from `start`, never early and never bunched. */
export function intendedSendTime(start: number, index: number, callsPerSecond: number): number {
  return start + (index * 1_000) / callsPerSecond;
}

/** Nearest-rank summary of latencies in ms; sorts `values` in place. */
function summarizeLatencies(values: Float64Array): LatencySummary {
  if (values.length === 0) throw new Error('no latencies to summarize');
  values.sort();
  return {
    p50: percentile(values, 0.5),
    p90: percentile(values, 0.9),
    p99: percentile(values, 0.99),
    p999: percentile(values, 0.999),
    max: values[values.length - 1]!,
  };
}

// Below this wait the scheduler spins on setImmediate (I/O keeps being served in
// between): a timer on Node wakes up to a millisecond late, which would bunch calls.
const spinBelowMilliseconds = 2;
const keptWrongExamples = 5;

export async function runOpenLoop(options: OpenLoopOptions): Promise<OpenLoopResult> {
  const now = options.now ?? (() => performance.now());
  const { callsPerSecond } = options;
  if (!(callsPerSecond > 0)) throw new Error(`callsPerSecond must be above 0, got ${callsPerSecond}`);
  const warmUpCalls = Math.round(callsPerSecond * options.warmUpSeconds);
  const measuredCalls = Math.round(callsPerSecond * options.durationSeconds);
  if (measuredCalls === 0) throw new Error('the measured period holds no call');
  const totalCalls = warmUpCalls + measuredCalls;
  const { hostname, port } = new URL(options.origin);
  const request = {
    host: hostname,
    port: Number(port),
    path: options.path,
    headers: options.headers,
    body: Buffer.from(options.body),
    expectedBody: Buffer.from(options.expectedBody),
  };
  const connections = await Promise.all(Array.from({ length: options.connections }, () => openH2cConnection(request)));
  // Measured calls only, by index from the end of the warm-up.
  const intended = new Float64Array(measuredCalls);
  const sentAt = new Float64Array(measuredCalls);
  const answeredAt = new Float64Array(measuredCalls).fill(Number.NaN);
  let wrong = 0;
  const wrongExamples: string[] = [];
  let outstanding = 0;
  let answered = 0;
  let allSent: () => void = () => {};
  let allAnswered: () => void = () => {};
  const sendingDone = new Promise<void>((resolve) => (allSent = resolve));
  const answeringDone = new Promise<void>((resolve) => (allAnswered = resolve));
  let sending = true;

  const countWrong = (description: string): void => {
    wrong++;
    if (wrongExamples.length < keptWrongExamples) wrongExamples.push(description);
  };

  const send = (index: number, due: number): void => {
    const measuredIndex = index - warmUpCalls;
    const sent = now();
    if (measuredIndex >= 0) {
      intended[measuredIndex] = due;
      sentAt[measuredIndex] = sent;
    }
    outstanding++;
    connections[index % connections.length]!.send((outcome: CallOutcome) => {
      outstanding--;
      if (measuredIndex >= 0) answeredAt[measuredIndex] = now();
      if (outcome === undefined) {
        if (measuredIndex >= 0) answered++;
      } else {
        countWrong(`call ${index}: ${outcome}`);
      }
      if (!sending && outstanding === 0) allAnswered();
    });
  };

  const cpuBefore = process.cpuUsage();
  const wallBefore = now();
  // A moment ahead, so the first call is not late already.
  const start = now() + 5;
  let next = 0;
  const tick = (): void => {
    const time = now();
    for (let due = intendedSendTime(start, next, callsPerSecond); next < totalCalls && due <= time; due = intendedSendTime(start, next, callsPerSecond)) {
      send(next, due);
      next++;
    }
    // One socket write per connection for every call due by now.
    for (const connection of connections) connection.flush();
    if (next >= totalCalls) {
      allSent();
      return;
    }
    const wait = intendedSendTime(start, next, callsPerSecond) - now();
    if (wait > spinBelowMilliseconds) setTimeout(tick, wait - spinBelowMilliseconds / 2);
    else setImmediate(tick);
  };
  tick();
  await sendingDone;
  const lastSend = now();
  sending = false;
  if (outstanding === 0) allAnswered();
  const drainEnd = intendedSendTime(start, totalCalls - 1, callsPerSecond) + options.drainMilliseconds;
  let drainTimer: NodeJS.Timeout | undefined;
  await Promise.race([answeringDone, new Promise<void>((resolve) => (drainTimer = setTimeout(resolve, Math.max(0, drainEnd - now()))))]);
  clearTimeout(drainTimer);
  const gaveUp = now();
  const cpu = process.cpuUsage(cpuBefore);
  const wall = gaveUp - wallBefore;
  for (const connection of connections) connection.close();

  let unanswered = 0;
  const latency = new Float64Array(measuredCalls);
  const serviceTime = new Float64Array(measuredCalls);
  const sendLag = new Float64Array(measuredCalls);
  for (let index = 0; index < measuredCalls; index++) {
    let end = answeredAt[index]!;
    if (Number.isNaN(end)) {
      // An unanswered call counts for as long as it was waited for.
      unanswered++;
      end = gaveUp;
    }
    latency[index] = end - intended[index]!;
    serviceTime[index] = end - sentAt[index]!;
    sendLag[index] = sentAt[index]! - intended[index]!;
  }
  const firstMeasured = intendedSendTime(start, warmUpCalls, callsPerSecond);
  const sendSpan = Math.max(lastSend, intendedSendTime(start, totalCalls - 1, callsPerSecond)) - firstMeasured;
  // n calls over the span between the first and the last: n - 1 intervals.
  const achievedCallsPerSecond = measuredCalls <= 1 ? callsPerSecond : ((measuredCalls - 1) * 1_000) / sendSpan;
  const lag = summarizeLatencies(sendLag);
  const result = {
    targetCallsPerSecond: callsPerSecond,
    scheduled: measuredCalls,
    achievedCallsPerSecond,
    answered,
    wrong,
    wrongExamples,
    unanswered,
    latency: summarizeLatencies(latency),
    serviceTime: summarizeLatencies(serviceTime),
    sendLag: lag,
    generatorCpuShare: (cpu.user + cpu.system) / 1_000 / wall,
  };
  const saturated = saturation(result.achievedCallsPerSecond, callsPerSecond, lag);
  return saturated === undefined ? result : { ...result, saturated };
}

function saturation(achieved: number, target: number, lag: LatencySummary): string | undefined {
  const reasons: string[] = [];
  if (achieved < target * saturationLimits.achievedShare) {
    reasons.push(`sent ${achieved.toFixed(0)} calls/s, under ${(saturationLimits.achievedShare * 100).toFixed(0)}% of the ${target.toFixed(0)} asked`);
  }
  if (lag.p99 > saturationLimits.sendLagP99Milliseconds) {
    reasons.push(`p99 send lag ${lag.p99.toFixed(2)} ms, over ${saturationLimits.sendLagP99Milliseconds} ms`);
  }
  return reasons.length === 0 ? undefined : reasons.join('; ');
}
