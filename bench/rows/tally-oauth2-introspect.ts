import { benchIssueRequest } from '../lib/fixtures.js';
import { measureHttpPost } from '../lib/measure-http-post.js';
import type { Row } from '../lib/row.js';

export const tallyOauth2Introspect: Row = {
  name: 'Tally RFC 7662 POST /oauth2/introspect',
  description:
    'the opaque token, introspected through the RFC 7662 form post on the HTTP port (wrk, the same settings as the peer), ' +
    'by the Tally with the default cache; a loopback caller, so no client authentication (protected mode)',
  async measure(context) {
    const [tally, issued] = await Promise.all([context.cachedTally(), context.opaqueToken()]);
    const url = `${tally.httpOrigin}/oauth2/introspect`;
    const headers = { 'content-type': 'application/x-www-form-urlencoded' };
    const body = new URLSearchParams({ token: issued.token }).toString();
    const expected = benchIssueRequest();
    return measureHttpPost(context, {
      slug: 'tally-oauth2-introspect',
      url,
      headers,
      body,
      checkAnswer: (answer) => {
        const { active, sub } = answer as { active?: unknown; sub?: unknown };
        if (active !== true || sub !== expected.subject) throw new Error(`Tally's RFC 7662 answer is not the issued token's: ${JSON.stringify(answer)}`);
      },
      expectedSubstrings: ['"active":true', `"sub":"${expected.subject}"`],
      server: tally.process,
    });
  },
};
