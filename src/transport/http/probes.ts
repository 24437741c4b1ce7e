// Kubernetes-style probes. /healthz: the process is alive and serving HTTP.
// /readyz: the same rule as gRPC health (store answers, key ring loaded, not
// draining), so either probe can decide where traffic goes.

import type { Readiness } from '../telemetry/readiness.js';
import type { Route } from './router.js';

const PLAIN = { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' };

export function createProbeRoutes(readiness: Readiness): Route[] {
  return [
    {
      method: 'GET',
      path: '/healthz',
      handle: (_request, response) => {
        response.writeHead(200, PLAIN).end('ok\n');
      },
    },
    {
      method: 'GET',
      path: '/readyz',
      handle: (_request, response) => {
        if (readiness.serving()) response.writeHead(200, PLAIN).end('ready\n');
        else response.writeHead(503, PLAIN).end(readiness.draining() ? 'draining\n' : 'not ready\n');
      },
    },
  ];
}
