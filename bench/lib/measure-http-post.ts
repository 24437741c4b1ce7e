// One HTTP/1.1 POST endpoint under wrk, checked the way gRPC rows are: the exact
// request is answered correctly once before and once after the load, and the
// Lua hook checks every answer under load (see wrk.ts).
import { join } from 'node:path';
import { isRunning, type StartedProcess } from './child-processes.js';
import type { BenchContext } from './context.js';
import type { Measurement } from './row.js';
import { runWrk, wrkArguments } from './wrk.js';

export interface HttpPostLoad {
  readonly slug: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  /** Throws when a parsed answer is not the one the row expects. */
  readonly checkAnswer: (answer: unknown) => void;
  /** Each answer under load must contain all of these; chosen so a wrong answer cannot. */
  readonly expectedSubstrings: readonly string[];
  readonly server: StartedProcess;
}

export async function measureHttpPost(context: BenchContext, load: HttpPostLoad): Promise<Measurement> {
  const before = await expectAnswer(load, 'before the load');
  const scriptPath = join(context.scratchDirectory, `${load.slug}.lua`);
  const result = await runWrk({
    url: load.url,
    headers: load.headers,
    body: load.body,
    expectedSubstrings: load.expectedSubstrings,
    settings: context.settings,
    scriptPath,
    outputPath: join(context.scratchDirectory, `${load.slug}.wrk-output.txt`),
  });

  const problems: string[] = [];
  const errorCount = Object.values(result.errors).reduce((sum, count) => sum + count, 0);
  if (errorCount > 0) problems.push(`wrk errors: ${JSON.stringify(result.errors)}`);
  if (result.wrong > 0) problems.push(`${result.wrong} of ${result.checked} answers were not 200 with ${JSON.stringify(load.expectedSubstrings)}`);
  if (result.checked < result.requests) problems.push(`only ${result.checked} of ${result.requests} answers reached the check`);
  if (!isRunning(load.server)) problems.push(`${load.server.name} is no longer running:\n${load.server.output()}`);
  if (problems.length > 0) throw new Error(`${load.slug}: the load was not all correct answers:\n  ${problems.join('\n  ')}\n${result.rawOutput}`);
  const after = await expectAnswer(load, 'after the load');
  for (const text of load.expectedSubstrings) {
    if (!before.includes(text) || !after.includes(text)) throw new Error(`${load.slug}: ${JSON.stringify(text)} is not in the checked answer`);
  }

  return {
    callsPerSecond: result.requestsPerSecond,
    p50Milliseconds: result.latency.p50,
    p99Milliseconds: result.latency.p99,
    requests: result.requests,
    command: `wrk ${wrkArguments({ url: load.url, scriptPath: `${load.slug}.lua`, settings: context.settings }, context.settings.durationSeconds).join(' ')}`,
    notes: [
      `request body ${Buffer.byteLength(load.body)} B, response body ${Buffer.byteLength(before)} B`,
      `every one of ${result.checked} answers checked by the script for status 200 and ${load.expectedSubstrings.map((text) => JSON.stringify(text)).join(', ')}`,
      "p50/p99 from wrk's latency histogram",
    ],
  };
}

async function expectAnswer(load: HttpPostLoad, when: string): Promise<string> {
  const response = await fetch(load.url, { method: 'POST', headers: load.headers, body: load.body, signal: AbortSignal.timeout(5_000) });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`${load.slug} ${when}: HTTP ${response.status}: ${text.slice(0, 300)}\n${load.server.output()}`);
  load.checkAnswer(JSON.parse(text));
  return text;
}
