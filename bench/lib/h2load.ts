// Runs h2load and reads back what it measured. h2load only sees HTTP statuses, so
// this also returns the byte counts a caller needs to prove the gRPC answers were
// the expected ones.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { startProcess } from './child-processes.js';
import { percentile } from './percentiles.js';

export interface LoadSettings {
  readonly connections: number;
  readonly streamsPerConnection: number;
  readonly threads: number;
  readonly warmUpSeconds: number;
  readonly durationSeconds: number;
  /** HTTP/2 connections the open-loop generator spreads its calls over (h2load and wrk use `connections`). */
  readonly openLoopConnections: number;
}

export interface H2loadRequest {
  readonly url: string;
  readonly bodyPath: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly settings: LoadSettings;
  /** Per-request log; removed first, because h2load appends to an existing file. */
  readonly logPath: string;
  /** Where h2load's own summary output goes. */
  readonly outputPath: string;
  /** Requests per second per connection (h2load --rps); unset, each connection sends as fast as it is answered. */
  readonly ratePerConnection?: number;
}

export interface H2loadResult {
  readonly requestsPerSecond: number;
  readonly seconds: number;
  readonly requests: { total: number; succeeded: number; failed: number; errored: number; timeout: number };
  readonly statusCodes: { '2xx': number; '3xx': number; '4xx': number; '5xx': number };
  /** Bytes of DATA frame payload received: the response bodies, headers and trailers excluded. */
  readonly dataBytes: number;
  /** Latencies of the requests answered 200, in milliseconds, from the per-request log. */
  readonly latency: { p50: number; p99: number; max: number; samples: number };
  readonly rawOutput: string;
}

export const h2loadMissingHint =
  'h2load was not found. It comes with Debian\'s nghttp2-client package: apt-get install nghttp2-client';

/** Fails with the install hint when h2load is missing. */
export async function h2loadVersion(outputPath: string): Promise<string> {
  if (!onPath('h2load')) throw new Error(h2loadMissingHint);
  const { code, output } = await run(['--version'], 10_000, outputPath);
  if (code !== 0) throw new Error(`h2load --version failed (exit ${code}):\n${output}`);
  return output.trim();
}

/** The exact h2load arguments, also printed with the results so a run can be repeated by hand. */
export function h2loadArguments(
  request: Pick<H2loadRequest, 'url' | 'bodyPath' | 'headers' | 'settings' | 'ratePerConnection'>,
  durationSeconds: number,
  logPath?: string,
): string[] {
  const { settings } = request;
  return [
    '-c', String(settings.connections),
    '-m', String(settings.streamsPerConnection),
    '-t', String(settings.threads),
    '-D', String(durationSeconds),
    ...(request.ratePerConnection === undefined ? [] : [`--rps=${request.ratePerConnection}`]),
    '-d', request.bodyPath,
    ...Object.entries(request.headers).flatMap(([name, value]) => ['-H', `${name}: ${value}`]),
    ...(logPath === undefined ? [] : [`--log-file=${logPath}`]),
    request.url,
  ];
}

/**
 * A warm-up run, then the measured run. The warm-up is a separate h2load process
 * rather than --warm-up-time because h2load's byte counters keep the warm-up's
 * traffic, and the response check below needs counts that cover the same requests.
 */
export async function runH2load(request: H2loadRequest): Promise<H2loadResult> {
  const { settings } = request;
  if (settings.warmUpSeconds > 0) {
    const warmUp = await run(h2loadArguments(request, settings.warmUpSeconds), (settings.warmUpSeconds + 20) * 1_000, request.outputPath);
    if (warmUp.code !== 0) throw new Error(`h2load warm-up failed (exit ${warmUp.code}):\n${warmUp.output}`);
  }
  rmSync(request.logPath, { force: true });
  const measured = await run(
    h2loadArguments(request, settings.durationSeconds, request.logPath),
    (settings.durationSeconds + 20) * 1_000,
    request.outputPath,
  );
  if (measured.code !== 0) throw new Error(`h2load failed (exit ${measured.code}):\n${measured.output}`);
  return { ...parseSummary(measured.output), latency: readLatencies(request.logPath), rawOutput: measured.output };
}

export function parseSummary(output: string): Omit<H2loadResult, 'latency' | 'rawOutput'> {
  const finished = match(output, /finished in ([\d.]+)s, ([\d.]+) req\/s/);
  const requests = match(output, /requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/);
  const statuses = match(output, /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/);
  const traffic = match(output, /traffic: .*?\((\d+)\) total, .*?\((\d+)\) headers.*?, .*?\((\d+)\) data/);
  return {
    seconds: Number(finished[1]),
    requestsPerSecond: Number(finished[2]),
    requests: {
      total: Number(requests[1]),
      succeeded: Number(requests[2]),
      failed: Number(requests[3]),
      errored: Number(requests[4]),
      timeout: Number(requests[5]),
    },
    statusCodes: { '2xx': Number(statuses[1]), '3xx': Number(statuses[2]), '4xx': Number(statuses[3]), '5xx': Number(statuses[4]) },
    dataBytes: Number(traffic[3]),
  };
}

/** Log rows: start time (µs since epoch), HTTP status, µs until the end of the response. */
export function readLatencies(logPath: string): H2loadResult['latency'] {
  const microseconds: number[] = [];
  for (const line of readFileSync(logPath, 'utf8').split('\n')) {
    const [, status, duration] = line.split('\t');
    // Status 0 marks a request cut off when the duration ended; it has no latency.
    if (status === '200' && duration !== undefined) microseconds.push(Number(duration));
  }
  microseconds.sort((a, b) => a - b);
  if (microseconds.length === 0) throw new Error(`h2load logged no answered request in ${logPath}`);
  return {
    p50: percentile(microseconds, 0.5) / 1_000,
    p99: percentile(microseconds, 0.99) / 1_000,
    max: microseconds[microseconds.length - 1]! / 1_000,
    samples: microseconds.length,
  };
}

function match(output: string, pattern: RegExp): RegExpMatchArray {
  const found = output.match(pattern);
  if (!found) throw new Error(`h2load output did not contain ${pattern}:\n${output}`);
  return found;
}

async function run(args: readonly string[], timeoutMilliseconds: number, outputPath: string): Promise<{ code: number | string; output: string }> {
  rmSync(outputPath, { force: true });
  const h2load = startProcess('h2load', 'h2load', args, { logPath: outputPath });
  // Stopped on timeout so a stuck server cannot stretch the bench past its bound.
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void h2load.stop();
  }, timeoutMilliseconds);
  const code = await h2load.exited;
  clearTimeout(timer);
  const output = readFileSync(outputPath, 'utf8');
  if (timedOut) throw new Error(`h2load did not finish within ${timeoutMilliseconds} ms:\n${output}`);
  return { code, output };
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((directory) => directory !== '' && existsSync(join(directory, command)));
}
