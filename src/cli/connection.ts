// How the CLI reaches a running Tally: the typed client of src/client over
// gRPC, TLS unless --plaintext (as grpcurl does), the API key from a file or
// TALLY_CLI_API_KEY (never from the command line, where `ps` shows it), and a
// deadline on every call. Every failure becomes one line that names it.

import { readFileSync } from 'node:fs';
import { Code, ConnectError, createTallyClient, type TallyClient } from '../client/index.js';
import { formatDuration, parseDuration, SETTINGS } from '../config.js';
import { CliError, usageError } from './usage-error.js';

export const CONNECTION_OPTIONS = {
  address: { type: 'string' },
  plaintext: { type: 'boolean' },
  ca: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  'server-name': { type: 'string' },
  'api-key-file': { type: 'string' },
  timeout: { type: 'string' },
} as const;

const ADDRESS_VARIABLE = 'TALLY_CLI_ADDRESS';
const API_KEY_VARIABLE = 'TALLY_CLI_API_KEY';
/** Tally on this machine, on its default gRPC port. */
const DEFAULT_ADDRESS = `127.0.0.1:${SETTINGS.grpcPort.default}`;
const DEFAULT_TIMEOUT_MS = 5_000;

export const CONNECTION_HELP = `Connection (every command that calls Tally):
  --address HOST:PORT     Tally's gRPC port (default $${ADDRESS_VARIABLE}, else ${DEFAULT_ADDRESS});
                          https://… or http://… also work
  --plaintext             no TLS (the server runs without TALLY_TLS_CERT_FILE)
  --ca FILE               PEM CA that signed Tally's certificate (default: the system's CAs)
  --cert FILE --key FILE  client certificate and key, for mutual TLS
  --server-name NAME      name to check Tally's certificate against, if not the address's host
  --api-key-file FILE     file holding the API key (default $${API_KEY_VARIABLE})
  --timeout DURATION      deadline of the call, e.g. 500ms, 5s (default ${formatDuration(DEFAULT_TIMEOUT_MS)})`;

export interface ConnectionValues {
  address?: string;
  plaintext?: boolean;
  ca?: string;
  cert?: string;
  key?: string;
  'server-name'?: string;
  'api-key-file'?: string;
  timeout?: string;
}

export interface Connection {
  client: TallyClient;
  /** What the operator asked for, for error messages. */
  address: string;
  timeoutMs: number;
}

function readFlagFile(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new CliError(`${flag}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
}

/** `host:port`, `[::1]:port` or a URL; the base URL the client wants. */
function baseUrlOf(address: string, plaintext: boolean): string {
  const explicit = /^(https?):\/\//i.exec(address);
  if (explicit !== null) {
    if (plaintext && explicit[1]!.toLowerCase() === 'https') throw usageError('--plaintext contradicts an https:// address');
    try {
      const url = new URL(address);
      if (url.port === '') throw new Error('no port');
      return `${url.protocol}//${url.host}`;
    } catch {
      throw usageError(`--address: expected HOST:PORT or a URL with a port, got ${JSON.stringify(address)}`);
    }
  }
  if (!/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(address)) {
    throw usageError(`--address: expected HOST:PORT (e.g. tally.example:50051), got ${JSON.stringify(address)}`);
  }
  return `${plaintext ? 'http' : 'https'}://${address}`;
}

function apiKeyOf(values: ConnectionValues, environment: NodeJS.ProcessEnv): string | undefined {
  const raw = values['api-key-file'] !== undefined
    ? readFlagFile('--api-key-file', values['api-key-file']).toString('utf8')
    : environment[API_KEY_VARIABLE];
  if (raw === undefined || raw === '') return undefined;
  const key = raw.trim();
  // A header value cannot hold control characters; say so before gRPC does, less clearly.
  if (key === '' || /[\s\x00-\x1f\x7f]/.test(key)) {
    throw new CliError(`${values['api-key-file'] !== undefined ? '--api-key-file' : API_KEY_VARIABLE}: the API key must be one line without spaces`);
  }
  return key;
}

export function connect(values: ConnectionValues, environment: NodeJS.ProcessEnv): Connection {
  const address = values.address ?? (environment[ADDRESS_VARIABLE] || DEFAULT_ADDRESS);
  const plaintext = values.plaintext === true || /^http:\/\//i.test(address);
  const baseUrl = baseUrlOf(address, values.plaintext === true);
  if (plaintext && (values.ca ?? values.cert ?? values.key ?? values['server-name']) !== undefined) {
    throw usageError('--ca, --cert, --key and --server-name need TLS; drop --plaintext');
  }
  if ((values.cert === undefined) !== (values.key === undefined)) throw usageError('--cert and --key go together');
  let timeoutMs = DEFAULT_TIMEOUT_MS;
  if (values.timeout !== undefined) {
    try {
      timeoutMs = parseDuration(values.timeout);
    } catch (error) {
      throw usageError(`--timeout: ${(error as Error).message}`);
    }
    if (timeoutMs <= 0) throw usageError('--timeout: must be longer than zero');
  }
  const client = createTallyClient({
    baseUrl,
    apiKey: apiKeyOf(values, environment),
    timeoutMs,
    // A person is waiting: one quick retry of a safe call, all within the deadline.
    retry: { maxAttempts: 2 },
    tls: plaintext
      ? undefined
      : {
          ca: values.ca === undefined ? undefined : readFlagFile('--ca', values.ca),
          cert: values.cert === undefined ? undefined : readFlagFile('--cert', values.cert),
          key: values.key === undefined ? undefined : readFlagFile('--key', values.key),
          serverName: values['server-name'],
        },
  });
  return { client, address, timeoutMs };
}

/** Runs one call, turning whatever it throws into a one-line CliError. */
export async function call<Result>(connection: Connection, run: (client: TallyClient) => Promise<Result>): Promise<Result> {
  try {
    return await run(connection.client);
  } catch (thrown) {
    throw new CliError(describeFailure(ConnectError.from(thrown), connection));
  }
}

// Node's codes for a server certificate the client cannot trust or that names another host.
const CERTIFICATE_ERRORS = /^(UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|CERT_|ERR_TLS_CERT_ALTNAME_INVALID)/;

function causeCode(error: ConnectError): string | undefined {
  let cause: unknown = error.cause;
  for (let depth = 0; depth < 4 && cause instanceof Error; depth += 1) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (typeof code === 'string') return code;
    cause = cause.cause;
  }
  return undefined;
}

function describeFailure(error: ConnectError, connection: Connection): string {
  // Node adds advice about the system's CA store that does not fit this command.
  const detail = oneLine(error.rawMessage.replace(/;? ?if the root CA is installed locally.*$/s, ''));
  const cause = causeCode(error);
  if (cause !== undefined && CERTIFICATE_ERRORS.test(cause)) {
    return `cannot trust the certificate of Tally at ${connection.address}: ${detail}; give --ca FILE (the CA that signed it) and, if its name differs from the address, --server-name`;
  }
  switch (error.code) {
    case Code.Unauthenticated:
      return `Tally at ${connection.address} did not accept the credential (unauthenticated): ${detail}; check --api-key-file or ${API_KEY_VARIABLE}`;
    case Code.PermissionDenied:
      return `Tally at ${connection.address} refused the call (permission denied): ${detail}`;
    case Code.DeadlineExceeded:
      return `no answer from Tally at ${connection.address} within ${connection.timeoutMs} ms (deadline exceeded); is the address right, and the port open?`;
    case Code.Unavailable:
      return `cannot reach Tally at ${connection.address} (unavailable): ${detail}`;
    case Code.InvalidArgument:
      return `Tally refused the request (invalid argument): ${detail}`;
    default:
      return `the call to Tally at ${connection.address} failed (${codeName(error.code)}): ${detail}`;
  }
}

function codeName(code: Code): string {
  return (Code[code] ?? String(code)).replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim() || 'no detail given';
}
