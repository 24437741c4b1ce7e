import type { BenchContext } from './context.js';
import type { OpenLoopResult } from './open-loop.js';

/**
 * One line of the results table. A row starts what it needs through the context,
 * checks that the answers are right, and measures; adding a comparison (a cache
 * hit, a JWT, Connect JSON under wrk, jose's jwtVerify in-process) is one more
 * module in bench/rows/ and one more entry in bench/rows/index.ts.
 */
export interface Row {
  readonly name: string;
  /** What the row's number means, printed under the table. */
  readonly description: string;
  measure(context: BenchContext): Promise<Measurement>;
}

export interface Measurement {
  readonly callsPerSecond: number;
  readonly p50Milliseconds: number;
  readonly p99Milliseconds: number;
  /** Calls answered correctly during the measured period. */
  readonly requests: number;
  /** The load generator's command line, so the row can be repeated by hand. */
  readonly command: string;
  /** Sizes and anything else a reader needs to compare rows fairly. */
  readonly notes: readonly string[];
  /** Set by open-loop rows: the whole latency distribution, for a table of its own. */
  readonly openLoop?: OpenLoopResult;
  /** Set by an open-loop row measured although the generator failed its check on the bare server in this run. */
  readonly generatorCheckFailed?: string;
}
