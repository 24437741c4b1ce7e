// GET /metrics: the Prometheus exposition. No credential, as with the probes:
// it says how Tally is doing, never anything about a token or a caller's key.

import type { Metrics } from '../metrics.js';
import type { Route } from './router.js';

export const METRICS_PATH = '/metrics';

export function createMetricsRoute(metrics: Metrics): Route {
  return {
    method: 'GET',
    path: METRICS_PATH,
    handle: async (_request, response) => {
      const { contentType, body } = await metrics.render();
      response.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
      response.end(body);
    },
  };
}
