// A small exact-path router in front of connect-node, so plain HTTP endpoints
// (probes now; OAuth introspection and revocation, JWKS and metrics later) sit
// beside the RPC routes without a framework. Anything it does not know goes to
// the fallback, which is the Connect handler.

import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';

export type RouteHandler = (request: IncomingMessage, response: ServerResponse) => void | Promise<void>;

export interface Route {
  method: 'GET' | 'POST';
  path: string;
  handle: RouteHandler;
}

export function createRouter(routes: readonly Route[], fallback: RouteHandler, onError: (error: unknown) => void): RequestListener {
  const byPath = new Map<string, Route[]>();
  for (const route of routes) byPath.set(route.path, [...(byPath.get(route.path) ?? []), route]);

  return (request, response) => {
    const path = (request.url ?? '/').split('?', 1)[0] as string;
    const candidates = byPath.get(path);
    if (candidates === undefined) {
      void Promise.resolve(fallback(request, response)).catch(onError);
      return;
    }
    // HEAD is GET without a body, as HTTP says; node drops the body itself.
    const method = request.method === 'HEAD' ? 'GET' : request.method;
    const route = candidates.find((candidate) => candidate.method === method);
    if (route === undefined) {
      response.writeHead(405, { allow: candidates.map((candidate) => candidate.method).join(', '), 'content-type': 'text/plain' });
      response.end('method not allowed\n');
      return;
    }
    void Promise.resolve(route.handle(request, response)).catch((error: unknown) => {
      onError(error);
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' });
      response.end();
    });
  };
}
