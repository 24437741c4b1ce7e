// How much memory tally/client's local view takes per cached answer: fills a
// view with N distinct active answers (each shaped like a real opaque token's:
// a subject, a client, a session, one audience, two scopes, no extra claims)
// from an in-memory Tally, and compares the heap after a full GC with the heap
// of the same view empty. The token strings, kept as the cache's keys, count.
//
// Usage: node --expose-gc --import tsx bench/local-view-memory.ts [N=100000] [claims bytes=0]
import type { JsonObject } from '@bufbuild/protobuf';
import { durationFromMs, timestampFromMs } from '@bufbuild/protobuf/wkt';
import { createClient, createRouterTransport } from '@connectrpc/connect';
import { startLocalView } from '../src/client/local-view.js';
import { TokenFormat, TokenService } from '../src/gen/tally/v1/token_service_pb.js';

const entries = Number(process.argv[2] ?? 100_000);
const claimsBytes = Number(process.argv[3] ?? 0);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined || !(entries > 0)) {
  console.error('usage: node --expose-gc --import tsx bench/local-view-memory.ts [N] [claims bytes]');
  process.exit(2);
}

const transport = createRouterTransport(({ service }) => {
  service(TokenService, {
    async *watchRevocations(_request, context) {
      yield { sequence: 1n, event: { case: 'started', value: { watchId: 'w', lease: durationFromMs(60_000), catchUpTo: 1n, storeTime: timestampFromMs(Date.now()) } } };
      await new Promise((resolve) => context.signal.addEventListener('abort', resolve));
    },
    acknowledgeRevocations: () => ({ held: true }),
    introspect: (request) => {
      const index = request.token.slice(4, 14);
      return {
        active: true,
        tokenId: `AAECAwQFBgcICQoL${index}`.slice(0, 22),
        format: TokenFormat.OPAQUE,
        subject: `user-${index}@example.com`,
        clientId: 'orders-web',
        sessionId: `session-${index}`,
        audience: ['orders'],
        scopes: ['orders:read', 'orders:write'],
        issuedAt: timestampFromMs(Date.now()),
        expiresAt: timestampFromMs(Date.now() + 3_600_000),
        issuer: 'https://tally.internal',
        claims: (claimsBytes > 0 ? { note: `${index}${'x'.repeat(claimsBytes)}` } : {}) as JsonObject,
        revocationSequence: 1n,
      };
    },
  });
});
const view = startLocalView(createClient(TokenService, transport), { maxEntries: entries });
while (!view.fresh()) await new Promise((resolve) => setTimeout(resolve, 5));

const heap = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};
const before = heap();
for (let i = 0; i < entries; i++) {
  // tly_ + 49 characters, as an opaque token; distinct per entry, and one flat string, as one read off the network is.
  const token = Buffer.from(`tly_${String(i).padStart(10, '0')}${'A'.repeat(39)}`, 'latin1').toString('latin1');
  await view.introspect({ token });
}
const after = heap();
if (view.size !== entries) throw new Error(`the view holds ${view.size} answers, expected ${entries}`);
const perEntry = (after - before) / entries;
console.log(JSON.stringify({ entries, claimsBytes, heapBytes: after - before, bytesPerAnswer: Math.round(perEntry), megabytes: Number(((after - before) / 1024 / 1024).toFixed(1)) }));
await view.close();
