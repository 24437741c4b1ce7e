// One gRPC unary call under the open-loop generator (open-loop.ts), run as a child
// process: the exact request is answered correctly before and after the load, as
// for h2load, and under load the generator compares every answer's bytes with the
// one verified before; a single different answer fails the row.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { delay, isRunning, startProcess } from './child-processes.js';
import type { BenchContext } from './context.js';
import { grpcFrame, grpcRequestHeaders } from './grpc-wire.js';
import { expectOkAnswer, shellQuote, type GrpcUnaryCall } from './measure-grpc-unary.js';
import type { OpenLoopProcessOptions } from './open-loop-process.js';
import type { OpenLoopResult } from './open-loop.js';
import type { Measurement } from './row.js';

export interface OpenLoopLoad extends GrpcUnaryCall {
  readonly callsPerSecond: number;
}

// Long enough for a server pushed past its peak to answer its backlog, short enough
// to keep the bench within its time limit.
const drainMilliseconds = 10_000;

export async function measureOpenLoop(context: BenchContext, load: OpenLoopLoad): Promise<Measurement> {
  const origin = `http://${load.address}`;
  const body = grpcFrame(load.request);
  const before = await expectOkAnswer(origin, load, body, 'before the load');
  const { settings } = context;
  const options: OpenLoopProcessOptions = {
    origin,
    path: load.path,
    body: body.toString('base64'),
    expectedBody: before.toString('base64'),
    headers: grpcRequestHeaders,
    callsPerSecond: load.callsPerSecond,
    warmUpSeconds: settings.warmUpSeconds,
    durationSeconds: settings.durationSeconds,
    connections: settings.openLoopConnections,
    drainMilliseconds,
  };
  const optionsPath = join(context.scratchDirectory, `${load.slug}.open-loop.json`);
  const resultPath = join(context.scratchDirectory, `${load.slug}.open-loop-result.json`);
  writeFileSync(optionsPath, JSON.stringify(options));
  const script = ['--import', 'tsx', 'bench/lib/open-loop-process.ts'];
  const generator = startProcess('open-loop generator', process.execPath, [...script, optionsPath, resultPath], {
    cwd: context.projectRoot,
    logPath: join(context.scratchDirectory, `${load.slug}.open-loop.log`),
  });
  const limitMilliseconds = (settings.warmUpSeconds + settings.durationSeconds + 30) * 1_000 + drainMilliseconds;
  const code = await Promise.race([
    generator.exited,
    new Promise<string>((resolve) => setTimeout(() => resolve('timeout'), limitMilliseconds).unref()),
  ]);
  if (code !== 0) {
    await generator.stop();
    throw new Error(`${load.slug}: the open-loop generator ended with ${code}:\n${generator.output()}`);
  }
  const result = JSON.parse(readFileSync(resultPath, 'utf8')) as OpenLoopResult;

  // Waited out first, even when the load already failed, so the next row does not meet the leftovers.
  const after = await afterBacklog(() => expectOkAnswer(origin, load, body, 'after the load')).then(
    (answer) => (answer.equals(before) ? undefined : 'the answer after the load differs from the one before it'),
    (error: unknown) => (error as Error).message,
  );
  const problems: string[] = [];
  if (result.wrong > 0) problems.push(`${result.wrong.toLocaleString('en-US')} answers were not the verified one, e.g. ${result.wrongExamples.join('; ')}`);
  if (!isRunning(load.server)) problems.push(`${load.server.name} is no longer running:\n${load.server.output()}`);
  if (after !== undefined) problems.push(after);
  if (problems.length > 0) {
    // The figures first: the table prints the first line of a failed row.
    const { latency } = result;
    throw new Error(
      `${result.answered.toLocaleString('en-US')} of ${result.scheduled.toLocaleString('en-US')} measured calls answered right ` +
        `(p50 ${latency.p50.toFixed(2)} ms, p99 ${latency.p99.toFixed(2)} ms from the intended send times, wrong answers included), ` +
        `${result.unanswered.toLocaleString('en-US')} unanswered; ${load.slug}: the load was not all correct answers:\n  ${problems.join('\n  ')}`,
    );
  }

  const { latency, serviceTime, sendLag } = result;
  return {
    callsPerSecond: result.achievedCallsPerSecond,
    p50Milliseconds: latency.p50,
    p99Milliseconds: latency.p99,
    requests: result.answered,
    command: `node ${[...script, `${load.slug}.open-loop.json`, 'result.json'].map(shellQuote).join(' ')}`,
    notes: [
      `${result.targetCallsPerSecond.toLocaleString('en-US')} calls/s asked, evenly spaced over ${settings.openLoopConnections} HTTP/2 connections, ` +
        `${settings.warmUpSeconds} s warm-up then ${settings.durationSeconds} s measured; latency from each call's intended send time`,
      `every one of ${result.answered.toLocaleString('en-US')} answers carried the ${before.length} verified response bytes` +
        (result.unanswered > 0
          ? `; ${result.unanswered.toLocaleString('en-US')} calls were still unanswered ${drainMilliseconds / 1_000} s after the last send (counted at the time waited: a lower bound)`
          : ''),
      `from the actual send (what a closed-loop generator reports): p50 ${serviceTime.p50.toFixed(2)} ms, p99 ${serviceTime.p99.toFixed(2)} ms`,
      `send lag p50 ${sendLag.p50.toFixed(3)} ms, p99 ${sendLag.p99.toFixed(3)} ms, max ${sendLag.max.toFixed(1)} ms; generator CPU ${(result.generatorCpuShare * 100).toFixed(0)}% of a core`,
      ...(result.saturated === undefined ? [] : [`GENERATOR SATURATED (${result.saturated}): part of this latency is the generator's`]),
    ],
    openLoop: result,
  };
}

// A server offered more than it can answer holds a backlog when the generator stops; the
// check after the load waits for it (the answer must still be the verified one), so the
// next row does not measure the leftovers.
const backlogLimitMilliseconds = 30_000;

async function afterBacklog(probe: () => Promise<Buffer>): Promise<Buffer> {
  const deadline = Date.now() + backlogLimitMilliseconds;
  for (;;) {
    try {
      return await probe();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await delay(1_000);
    }
  }
}
