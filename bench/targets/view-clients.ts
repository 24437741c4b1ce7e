// Ten services' clients with local views on, in one process, each watching
// revocations through one of the leased replicas (round robin), for the Revoke
// row with subscribed clients (rows/tally-revoke-view-clients.ts). Steps, each
// announced on stdout for the row to wait on:
//   1. every client's view fresh                      -> "views fresh"
//   2. every token of <tokens file> cached, active,
//      in every client                                -> "cached <hits>"
//   3. waits for <go file> to appear (the row has revoked every token), then
//      asks every client about every token, which must be inactive
//                                                     -> bench-result {json}
// Usage: node --import tsx bench/targets/view-clients.ts <clients> <tokens file> <go file> <gRPC address>...
import { existsSync, readFileSync } from 'node:fs';
import { createTallyClient, type TallyClientWithLocalView } from '../../src/client/index.js';

const [countText = '', tokensPath = '', goPath = '', ...addresses] = process.argv.slice(2);
const count = Number(countText);
if (!(count > 0) || tokensPath === '' || goPath === '' || addresses.length === 0) {
  console.error('usage: view-clients.ts <clients> <tokens file> <go file> <gRPC address>...');
  process.exit(2);
}

async function until(condition: () => boolean, withinMilliseconds: number, what: string): Promise<void> {
  const deadline = Date.now() + withinMilliseconds;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} within ${withinMilliseconds} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

let breaks = 0;
const clients: TallyClientWithLocalView[] = Array.from({ length: count }, (_, index) =>
  createTallyClient({
    baseUrl: `http://${addresses[index % addresses.length]}`,
    localView: {
      maxEntries: 100_000,
      onChange: (change) => {
        if (change.watching) return;
        breaks++;
        // In the row's log, to explain a failed row.
        console.log(`client ${index} stopped watching: ${change.reason}${change.error === undefined ? '' : ` (${String(change.error)})`}`);
      },
    },
  }),
);
await until(() => clients.every((client) => client.localView.fresh()), 15_000, 'not every view was fresh');
console.log('views fresh');

await until(() => existsSync(tokensPath), 120_000, 'no tokens file came');
const tokens = JSON.parse(readFileSync(tokensPath, 'utf8')) as string[];
for (const client of clients) {
  for (const token of tokens) if (!(await client.introspect({ token })).active) throw new Error('a token was not active before the revokes');
  // Asked again: answered from the cache, so the revokes have caches to reach.
  for (const token of tokens) await client.introspect({ token });
}
const hitsBefore = clients.reduce((sum, client) => sum + client.localView.stats().hits, 0);
const breaksBefore = breaks;
console.log(`cached ${hitsBefore}`);

await until(() => existsSync(goPath), 600_000, 'the row did not say the revokes were done');
let activeAfter = 0;
for (const client of clients) for (const token of tokens) if ((await client.introspect({ token })).active) activeAfter++;
const freshAfter = clients.filter((client) => client.localView.fresh()).length;
const breaksDuringRevokes = breaks - breaksBefore;
await Promise.all(clients.map((client) => client.localView.close()));
console.log(`bench-result ${JSON.stringify({ clients: count, tokens: tokens.length, hitsBefore, activeAfter, breaksDuringRevokes, freshAfter })}`);
