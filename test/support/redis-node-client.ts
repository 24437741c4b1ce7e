// A short-lived client to one redis-server process (a Cluster node, a
// Sentinel, a primary or replica), for the launchers and the tests that
// inspect servers directly; and the parser for what INFO answers.
import { Redis } from 'ioredis';

/** Connects to one process, runs use, and disconnects; fails fast instead of queueing. */
export async function withNodeClient<T>(port: number, use: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 1000,
    commandTimeout: 2000,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return await use(client);
  } finally {
    client.disconnect();
  }
}

/** The "field:value" lines of an INFO (or CLUSTER INFO) answer. */
export function parseInfo(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}
