import { benchIssueRequest, introspectPath } from '../lib/fixtures.js';
import { measureHttpPost } from '../lib/measure-http-post.js';
import type { Row } from '../lib/row.js';

export const tallyConnectJsonIntrospect: Row = {
  name: 'Tally Connect JSON Introspect, HTTP/1.1',
  description:
    'the opaque token, introspected through the Connect protocol with a JSON body on the HTTP port ' +
    '(wrk, HTTP/1.1 keep-alive), by the Tally with the default cache',
  async measure(context) {
    const [tally, issued] = await Promise.all([context.cachedTally(), context.opaqueToken()]);
    const expected = benchIssueRequest();
    return measureHttpPost(context, {
      slug: 'tally-connect-json-introspect',
      url: `${tally.httpOrigin}${introspectPath}`,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: issued.token }),
      checkAnswer: (answer) => {
        const { active, subject, tokenId } = answer as { active?: unknown; subject?: unknown; tokenId?: unknown };
        if (active !== true || subject !== expected.subject || tokenId !== issued.tokenId) {
          throw new Error(`Tally's Connect answer is not the issued token's: ${JSON.stringify(answer)}`);
        }
      },
      expectedSubstrings: ['"active":true', `"tokenId":"${issued.tokenId}"`],
      server: tally.process,
    });
  },
};
