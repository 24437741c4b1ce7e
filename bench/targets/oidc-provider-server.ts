// The peer: node-oidc-provider's RFC 7662 introspection endpoint, with a Redis
// adapter on the bench's Redis, serving one confidential client that obtains
// opaque access tokens by the client-credentials grant and introspects them.
//
// Usage: node --import tsx bench/targets/oidc-provider-server.ts <port> <redis-url>
import { createServer } from 'node:http';
import { Redis } from 'ioredis';
import Provider from 'oidc-provider';
import { oidcProviderClient } from './oidc-provider-client.js';
import { createRedisAdapterClass } from './oidc-provider-redis-adapter.js';

const port = Number(process.argv[2]);
const redisUrl = process.argv[3];
if (!Number.isInteger(port) || port <= 0 || redisUrl === undefined) {
  console.error('usage: oidc-provider-server.ts <port> <redis-url>');
  process.exit(2);
}

const redis = new Redis(redisUrl);
const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  adapter: createRedisAdapterClass(redis),
  clients: [
    {
      client_id: oidcProviderClient.id,
      client_secret: oidcProviderClient.secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: false },
    introspection: {
      enabled: true,
      // A client may read its own tokens only: the usual policy, and one lookup as cheap as the default's.
      allowedPolicy: (_context: unknown, client: { clientId: string }, token: { clientId?: string }) => token.clientId === client.clientId,
    },
  },
});

const server = createServer(provider.callback());
server.listen(port, '127.0.0.1', () => console.log(`oidc-provider listening on ${issuer}`));

const shutDown = (): void => {
  server.close(() => {
    redis.disconnect();
    process.exit(0);
  });
  // Keep-alive connections from the load generator would hold close() open.
  server.closeAllConnections();
};
process.once('SIGTERM', shutDown);
process.once('SIGINT', shutDown);
