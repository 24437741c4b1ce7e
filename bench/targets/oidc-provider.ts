// Starts the peer in its own process and obtains its opaque access token the way
// a client would: discovery, then the token endpoint with the client-credentials
// grant and client_secret_basic.
import { join } from 'node:path';
import { startProcess, type StartedProcess } from '../lib/child-processes.js';
import { freeLoopbackPort } from '../lib/free-port.js';
import { basicAuthorization } from './oidc-provider-client.js';

export interface OidcProviderTarget {
  readonly issuer: string;
  readonly introspectionEndpoint: string;
  /** An opaque access token minted by the client-credentials grant. */
  readonly accessToken: string;
  readonly commandLine: string;
  readonly process: StartedProcess;
}

export async function startOidcProvider(projectRoot: string, scratchDirectory: string, redisUrl: string): Promise<OidcProviderTarget> {
  const port = await freeLoopbackPort();
  const args = ['--import', 'tsx', 'bench/targets/oidc-provider-server.ts', String(port), redisUrl];
  const server = startProcess('oidc-provider', process.execPath, args, {
    cwd: projectRoot,
    // Production mode, as a deployment runs it: no development-only checks on the hot path.
    env: { ...process.env, NODE_ENV: 'production' },
    logPath: join(scratchDirectory, `oidc-provider-${port}.log`),
  });
  await server.waitForOutput(/listening on /, 15_000);
  const issuer = `http://127.0.0.1:${port}`;

  const discovery = await fetchJson(`${issuer}/.well-known/openid-configuration`, { method: 'GET' });
  const tokenEndpoint = stringField(discovery, 'token_endpoint');
  const introspectionEndpoint = stringField(discovery, 'introspection_endpoint');
  const tokenAnswer = await fetchJson(tokenEndpoint, {
    method: 'POST',
    headers: { authorization: basicAuthorization(), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials' }).toString(),
  });
  const accessToken = stringField(tokenAnswer, 'access_token');
  // A JWT would be checked without a Redis lookup; the comparison is opaque against opaque.
  if (accessToken.split('.').length === 3) throw new Error('oidc-provider issued a JWT; the peer row needs an opaque token');
  return { issuer, introspectionEndpoint, accessToken, commandLine: `NODE_ENV=production node ${args.join(' ')}`, process: server };
}

async function fetchJson(url: string, init: RequestInit): Promise<Record<string, unknown>> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(5_000) });
  const text = await response.text();
  if (!response.ok) throw new Error(`${init.method} ${url} answered ${response.status}: ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

function stringField(object: Record<string, unknown>, name: string): string {
  const value = object[name];
  if (typeof value !== 'string' || value === '') throw new Error(`expected a string ${name} in ${JSON.stringify(object)}`);
  return value;
}
