import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startProcess } from '../lib/child-processes.js';
import { benchIssueRequest } from '../lib/fixtures.js';
import type { Measurement, Row } from '../lib/row.js';

// Pinned to one core, as the jose rows are: the claim is decisions per second on one core.
const tasksetPath = '/usr/bin/taskset';
const warmUpSeconds = 1;
const measuredSeconds = 4;

interface LoopResult {
  readonly calls: number;
  readonly wrong: number;
  readonly hits: number;
  readonly misses: number;
  readonly callsPerSecond: number;
  readonly p50Milliseconds: number;
  readonly p99Milliseconds: number;
}

export const tallyClientViewHit: Row = {
  name: 'Tally client local view hit, in process',
  description:
    "tally/client with localView on, watching revocations from the cached Tally: the same opaque token introspected in a tight loop of awaited calls, " +
    'each timed, in a child process on one core, its event loop let turn every 1,000 calls (so the watch is served, as between a service\'s requests); ' +
    'the answers come from the in-process cache (checked), as exact as the replicas\' own',
  async measure(context): Promise<Measurement> {
    const [tally, issued] = await Promise.all([context.cachedTally(), context.opaqueToken()]);
    const subject = benchIssueRequest().subject;
    const script = ['--import', 'tsx', 'bench/targets/local-view-loop.ts', tally.grpcAddress, subject, String(warmUpSeconds), String(measuredSeconds)];
    const pinned = existsSync(tasksetPath);
    const [command, args] = pinned ? [tasksetPath, ['-c', '0', process.execPath, ...script]] : [process.execPath, script];
    const loop = startProcess('local view loop', command, args, {
      cwd: context.projectRoot,
      env: { ...process.env, TALLY_BENCH_TOKEN: issued.token },
      logPath: join(context.scratchDirectory, 'local-view-loop.log'),
    });
    const code = await Promise.race([
      loop.exited,
      new Promise<string>((resolve) => setTimeout(() => resolve('timeout'), (warmUpSeconds + measuredSeconds + 30) * 1_000).unref()),
    ]);
    if (code !== 0) {
      await loop.stop();
      throw new Error(`the local view loop ended with ${code}:\n${loop.output()}`);
    }
    const line = loop.output().split('\n').find((text) => text.startsWith('bench-result '));
    if (line === undefined) throw new Error(`the local view loop printed no result:\n${loop.output()}`);
    const result = JSON.parse(line.slice('bench-result '.length)) as LoopResult;
    if (result.wrong > 0 || result.calls === 0) throw new Error(`the local view loop answered ${result.calls} calls, ${result.wrong} wrong`);
    // A process starved of CPU (a shared machine) can outlive its lease between two turns of its event loop;
    // those few calls ask Tally, as they must. More than a few means the row did not measure the cache.
    if (result.hits + result.misses !== result.calls || result.misses > result.calls / 1_000) {
      throw new Error(`the local view answered ${result.hits} of ${result.calls} calls from its cache (${result.misses} asked Tally)`);
    }
    return {
      callsPerSecond: result.callsPerSecond,
      p50Milliseconds: result.p50Milliseconds,
      p99Milliseconds: result.p99Milliseconds,
      requests: result.calls,
      command: `TALLY_BENCH_TOKEN=<token> ${pinned ? 'taskset -c 0 ' : ''}node ${script.join(' ')}`,
      notes: [
        `every one of ${result.calls} calls answered active with the expected subject; ${result.hits} from the cache, ${result.misses} asked Tally (the view was not fresh then)`,
        `p50 ${(result.p50Milliseconds * 1_000).toFixed(2)} µs, p99 ${(result.p99Milliseconds * 1_000).toFixed(2)} µs per call`,
        `${measuredSeconds} s measured after ${warmUpSeconds} s warm-up${pinned ? ', pinned to CPU 0' : ', not pinned (no taskset)'}`,
      ],
    };
  },
};
