import { measureHttpPost } from '../lib/measure-http-post.js';
import type { Row } from '../lib/row.js';
import { basicAuthorization, oidcProviderClient } from '../targets/oidc-provider-client.js';

export const oidcProviderIntrospect: Row = {
  name: 'peer: oidc-provider RFC 7662 introspection',
  description:
    "node-oidc-provider's introspection endpoint with a Redis adapter on the same Redis: an opaque client-credentials " +
    'access token, introspected by its own client with client_secret_basic (wrk, the same settings as the RFC 7662 row)',
  async measure(context) {
    const peer = await context.oidcProvider();
    return measureHttpPost(context, {
      slug: 'oidc-provider-introspect',
      url: peer.introspectionEndpoint,
      headers: { authorization: basicAuthorization(), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: peer.accessToken }).toString(),
      checkAnswer: (answer) => {
        const { active, client_id: clientId } = answer as { active?: unknown; client_id?: unknown };
        if (active !== true || clientId !== oidcProviderClient.id) throw new Error(`oidc-provider's answer is not its token's: ${JSON.stringify(answer)}`);
      },
      expectedSubstrings: ['"active":true', `"client_id":"${oidcProviderClient.id}"`],
      server: peer.process,
    });
  },
};
