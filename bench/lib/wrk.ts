// Runs wrk (HTTP/1.1) with a generated Lua script that posts one fixed request
// and checks every response: wrk counts only socket errors and non-2xx/3xx
// statuses, so an answer of {"active":false} would otherwise count as a success.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { startProcess } from './child-processes.js';
import type { LoadSettings } from './h2load.js';

export interface WrkRequest {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  /** Every response must be 200 and contain each of these, or it counts as wrong. */
  readonly expectedSubstrings: readonly string[];
  readonly settings: LoadSettings;
  readonly scriptPath: string;
  /** Where wrk's own output goes. */
  readonly outputPath: string;
}

export interface WrkResult {
  readonly requestsPerSecond: number;
  readonly seconds: number;
  readonly requests: number;
  /** Responses the Lua hook saw, and those of them that were not 200 with every expected substring. */
  readonly checked: number;
  readonly wrong: number;
  readonly errors: { connect: number; read: number; write: number; status: number; timeout: number };
  readonly latency: { p50: number; p99: number; max: number };
  readonly rawOutput: string;
}

export const wrkMissingHint = "wrk was not found. Debian's wrk package has it: apt-get install wrk";

export function wrkAvailable(): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((directory) => directory !== '' && existsSync(join(directory, 'wrk')));
}

export async function wrkVersion(outputPath: string): Promise<string> {
  if (!wrkAvailable()) return 'wrk not found';
  // wrk -v prints its version and exits 1.
  const { output } = await run(['-v'], 10_000, outputPath);
  return output.split('\n')[0]?.trim() ?? 'wrk (version unknown)';
}

/** wrk's connections and thread match h2load's; HTTP/1.1 carries one request per connection at a time. */
export function wrkArguments(request: Pick<WrkRequest, 'url' | 'scriptPath' | 'settings'>, durationSeconds: number): string[] {
  const { settings } = request;
  return ['-c', String(settings.connections), '-t', String(settings.threads), '-d', `${durationSeconds}s`, '-s', request.scriptPath, request.url];
}

/** As runH2load: a warm-up run, then the measured run, so the counts cover only measured requests. */
export async function runWrk(request: WrkRequest): Promise<WrkResult> {
  if (!wrkAvailable()) throw new Error(wrkMissingHint);
  writeFileSync(request.scriptPath, luaScript(request));
  const { settings } = request;
  if (settings.warmUpSeconds > 0) {
    const warmUp = await run(wrkArguments(request, settings.warmUpSeconds), (settings.warmUpSeconds + 20) * 1_000, request.outputPath);
    if (warmUp.code !== 0) throw new Error(`wrk warm-up failed (exit ${warmUp.code}):\n${warmUp.output}`);
  }
  const measured = await run(wrkArguments(request, settings.durationSeconds), (settings.durationSeconds + 20) * 1_000, request.outputPath);
  if (measured.code !== 0) throw new Error(`wrk failed (exit ${measured.code}):\n${measured.output}`);
  return parseResult(measured.output);
}

function luaScript(request: WrkRequest): string {
  const headers = Object.entries(request.headers).map(([name, value]) => `wrk.headers[${luaString(name)}] = ${luaString(value)}`);
  const checks = request.expectedSubstrings.map((text) => `string.find(body, ${luaString(text)}, 1, true)`);
  // Each wrk thread runs its own Lua state: counters live per thread and done() adds them up.
  return [
    'wrk.method = "POST"',
    `wrk.body = ${luaString(request.body)}`,
    ...headers,
    'local threads = {}',
    'function setup(thread) table.insert(threads, thread) end',
    'function init(args) checked = 0; wrong = 0 end',
    'function response(status, headers, body)',
    '  checked = checked + 1',
    `  if status ~= 200 or not (${checks.length === 0 ? 'true' : checks.join(' and ')}) then wrong = wrong + 1 end`,
    'end',
    'function done(summary, latency, requests)',
    '  local checked, wrong = 0, 0',
    '  for _, thread in ipairs(threads) do checked = checked + thread:get("checked"); wrong = wrong + thread:get("wrong") end',
    '  local errors = summary.errors',
    '  io.write(string.format("bench-result requests=%d duration_us=%d checked=%d wrong=%d connect=%d read=%d write=%d status=%d timeout=%d p50_us=%d p99_us=%d max_us=%d\\n",',
    '    summary.requests, summary.duration, checked, wrong, errors.connect, errors.read, errors.write, errors.status, errors.timeout,',
    '    latency:percentile(50), latency:percentile(99), latency.max))',
    'end',
    '',
  ].join('\n');
}

/** JSON string syntax is Lua string syntax for printable ASCII, which is all the bench sends. */
function luaString(text: string): string {
  if (!/^[\x20-\x7e]*$/.test(text)) throw new Error(`only printable ASCII goes into the wrk script: ${JSON.stringify(text)}`);
  return JSON.stringify(text);
}

export function parseResult(output: string): WrkResult {
  const line = output.split('\n').find((text) => text.startsWith('bench-result '));
  if (line === undefined) throw new Error(`wrk printed no bench-result line:\n${output}`);
  const fields = Object.fromEntries(
    line
      .slice('bench-result '.length)
      .trim()
      .split(' ')
      .map((pair) => {
        const [name = '', value = ''] = pair.split('=');
        return [name, Number(value)];
      }),
  );
  const field = (name: string): number => {
    const value = fields[name];
    if (value === undefined || !Number.isFinite(value)) throw new Error(`wrk's bench-result line lacks ${name}: ${line}`);
    return value;
  };
  const seconds = field('duration_us') / 1e6;
  return {
    requestsPerSecond: field('requests') / seconds,
    seconds,
    requests: field('requests'),
    checked: field('checked'),
    wrong: field('wrong'),
    errors: { connect: field('connect'), read: field('read'), write: field('write'), status: field('status'), timeout: field('timeout') },
    latency: { p50: field('p50_us') / 1_000, p99: field('p99_us') / 1_000, max: field('max_us') / 1_000 },
    rawOutput: output,
  };
}

async function run(args: readonly string[], timeoutMilliseconds: number, outputPath: string): Promise<{ code: number | string; output: string }> {
  rmSync(outputPath, { force: true });
  const wrk = startProcess('wrk', 'wrk', args, { logPath: outputPath });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void wrk.stop();
  }, timeoutMilliseconds);
  const code = await wrk.exited;
  clearTimeout(timer);
  const output = readFileSync(outputPath, 'utf8');
  if (timedOut) throw new Error(`wrk did not finish within ${timeoutMilliseconds} ms:\n${output}`);
  return { code, output };
}
