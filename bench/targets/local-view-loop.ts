// tally/client with its local view on, answering one token over and over: what a
// service gets per decision once its cache holds the token. One awaited
// introspect after another in a tight loop, each call timed, as the jose loop
// does (jose-verify-loop.ts), in a child process of its own so the bench's work
// does not share its event loop. Every answer is checked (active, the subject
// issued), and every measured call must have come from the cache.
//
// Usage: TALLY_BENCH_TOKEN=<token> node --import tsx bench/targets/local-view-loop.ts <gRPC address> <subject> <warm-up seconds> <seconds>
// (the token in the environment, not on a command line others can read). Prints one line: bench-result {json}.
import { createTallyClient } from '../../src/client/index.js';
import { percentile } from '../lib/percentiles.js';

const [address = '', subject = '', warmUpText = '', secondsText = ''] = process.argv.slice(2);
const token = process.env.TALLY_BENCH_TOKEN ?? '';
const warmUpSeconds = Number(warmUpText);
const seconds = Number(secondsText);
if (address === '' || token === '' || !(warmUpSeconds >= 0) || !(seconds > 0)) {
  console.error('usage: TALLY_BENCH_TOKEN=<token> local-view-loop.ts <gRPC address> <subject> <warm-up seconds> <seconds>');
  process.exit(2);
}

const client = createTallyClient({ baseUrl: `http://${address}`, localView: true });
const deadline = Date.now() + 10_000;
while (!client.localView.fresh()) {
  if (Date.now() > deadline) throw new Error('the local view did not become fresh within 10 s');
  await new Promise((resolve) => setTimeout(resolve, 10));
}
// The one call that asks Tally and fills the cache.
if (!(await client.introspect({ token })).active) throw new Error('the token is not active');

const YIELD_EVERY_CALLS = 1_000;

async function loop(durationMilliseconds: number, record: boolean): Promise<{ calls: number; wrong: number; elapsed: number; samples: number[] }> {
  const samples: number[] = [];
  let calls = 0;
  let wrong = 0;
  const start = performance.now();
  const end = start + durationMilliseconds;
  let now = start;
  while (now < end) {
    // A service's event loop turns between requests; this one's must too, or
    // the watch (its stream, its acknowledgements) would never be served and
    // the lease would run out under the loop.
    if (calls % YIELD_EVERY_CALLS === 0) await new Promise((resolve) => setImmediate(resolve));
    const before = performance.now();
    const answer = await client.introspect({ token });
    now = performance.now();
    if (!answer.active || answer.subject !== subject) wrong++;
    calls++;
    if (record) samples.push(now - before);
  }
  return { calls, wrong, elapsed: now - start, samples };
}

await loop(warmUpSeconds * 1_000, false);
const before = client.localView.stats();
const measured = await loop(seconds * 1_000, true);
const after = client.localView.stats();
const sorted = measured.samples.sort((a, b) => a - b);
await client.localView.close();
console.log(
  `bench-result ${JSON.stringify({
    calls: measured.calls,
    wrong: measured.wrong,
    hits: after.hits - before.hits,
    misses: after.misses - before.misses,
    callsPerSecond: measured.calls / (measured.elapsed / 1_000),
    p50Milliseconds: percentile(sorted, 0.5),
    p99Milliseconds: percentile(sorted, 0.99),
  })}`,
);
