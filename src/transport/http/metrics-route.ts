// GET /metrics: the Prometheus exposition. No credential needed, as with the
// probes: it says how Tally is doing, never anything about a token or a
// caller's key. Why introspections were inactive is added only for a caller
// with the `metrics` permission (a scraper's API key, or loopback in
// protected mode): unauthenticated, those counters would tell an observer
// what the failing caller itself is never told. A credential that is
// presented must be good, as everywhere: a wrong one is refused, not ignored.

import { Code } from '@connectrpc/connect';
import { toConnectError } from '../call/errors.js';
import type { Guard } from '../call/guard.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { Route } from './router.js';
import { peerInfoOf } from './server.js';

const METRICS_PATH = '/metrics';
const METRICS_CALL = `GET ${METRICS_PATH}`;

export function createMetricsRoute(metrics: Metrics, guard: Guard): Route {
  return {
    method: 'GET',
    path: METRICS_PATH,
    handle: async (request, response) => {
      const authorization = request.headers.authorization;
      let withInactiveReasons = false;
      try {
        guard.check(METRICS_CALL, authorization, peerInfoOf(request));
        withInactiveReasons = true;
      } catch (thrown) {
        if (authorization !== undefined) {
          const error = toConnectError(thrown);
          const status = error.code === Code.PermissionDenied ? 403 : 401;
          response.writeHead(status, { 'content-type': 'text/plain', 'cache-control': 'no-store', ...(status === 401 ? { 'www-authenticate': 'Bearer realm="tally"' } : {}) });
          response.end(`${error.rawMessage}\n`);
          return;
        }
      }
      const { contentType, body } = await metrics.render({ withInactiveReasons });
      response.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
      response.end(body);
    },
  };
}
