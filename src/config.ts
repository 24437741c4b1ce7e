// Every setting Tally reads, in one documented object: `--help`, the README
// table and start-up validation all come from SETTINGS, so they cannot drift
// apart. Values come only from TALLY_* environment variables; a bad value stops
// start-up with a message that names the variable.

import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { createSecureContext } from 'node:tls';
import { generateKeyPairSync } from 'node:crypto';
import { parseRedisUrl as parseRedisTarget } from './store/redis/connection-url.js';
import { INTERNAL_SIGNING_ALGORITHMS, type InternalSigningAlgorithm } from './core/keys/internal-key.js';
import { isSigningAlgorithm, POST_QUANTUM_SIGNING_ALGORITHMS, SIGNING_ALGORITHMS, type SigningAlgorithm } from './core/types.js';

interface Setting<T> {
  env: string;
  /** As the operator would write it; undefined when unset means "not configured". */
  default: string | undefined;
  description: string;
  /** Never echo the value in an error message. */
  secret?: boolean;
  parse(raw: string): T;
}

function required<T>(setting: Setting<T> & { default: string }): Setting<T> {
  return setting;
}

function optional<T>(setting: Omit<Setting<T>, 'default'>): Setting<T | undefined> {
  return { ...setting, default: undefined };
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `500ms`, `90s`, `15m`, `1h`, `1d` and sums such as `1h30m`. A bare number has no unit and is refused. */
export function parseDuration(raw: string): number {
  const text = raw.trim();
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;
  let total = 0;
  let position = 0;
  while (position < text.length) {
    part.lastIndex = position;
    const match = part.exec(text);
    if (match === null) {
      throw new Error('expected a duration such as 500ms, 90s, 15m, 1h or 1h30m');
    }
    total += Number(match[1]) * (DURATION_UNITS_MS[match[2] as string] as number);
    position = part.lastIndex;
  }
  if (text.length === 0) throw new Error('expected a duration such as 500ms, 90s, 15m, 1h or 1h30m');
  if (!Number.isSafeInteger(Math.round(total))) throw new Error('the duration is too long');
  return Math.round(total);
}

function positiveDuration(raw: string): number {
  const milliseconds = parseDuration(raw);
  if (milliseconds <= 0) throw new Error('must be longer than zero');
  return milliseconds;
}

function parsePort(raw: string): number {
  if (!/^\d+$/.test(raw.trim())) throw new Error('expected a TCP port number (0 to 65535)');
  const port = Number(raw);
  if (port > 65_535) throw new Error('expected a TCP port number (0 to 65535)');
  return port;
}

function parseHost(raw: string): string {
  const host = raw.trim();
  if (host === '' || (isIP(host) === 0 && !/^[A-Za-z0-9.-]+$/.test(host))) {
    throw new Error('expected an IP address or a host name');
  }
  return host;
}

function parseRotationInterval(raw: string): number {
  const milliseconds = parseDuration(raw);
  // Each rotation keeps the old key verifying for the longest token lifetime;
  // a schedule faster than seconds would only grow the key ring.
  if (milliseconds < 1_000) throw new Error('must be at least 1s');
  return milliseconds;
}

function parseYesNo(raw: string): boolean {
  const text = raw.trim().toLowerCase();
  if (['yes', 'true', 'on', '1'].includes(text)) return true;
  if (['no', 'false', 'off', '0'].includes(text)) return false;
  throw new Error('expected yes or no');
}

function parseCount(raw: string): number {
  if (!/^\d+$/.test(raw.trim())) throw new Error('expected a whole number, 0 or more');
  const count = Number(raw);
  if (!Number.isSafeInteger(count)) throw new Error('the number is too large');
  return count;
}

function parseLeaseMs(raw: string): number {
  const milliseconds = parseCount(raw);
  if (milliseconds < 100 || milliseconds > 60_000) throw new Error('expected milliseconds from 100 to 60000');
  return milliseconds;
}

function parseReadableFile(raw: string): string {
  const path = raw.trim();
  try {
    readFileSync(path);
  } catch (error) {
    throw new Error(`cannot read the file: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
  return path;
}

const BYTE_UNITS: Record<string, number> = { '': 1, B: 1, KiB: 1024, MiB: 1024 * 1024 };
// gRPC length-prefixes messages with 32 bits; far below that is already absurd for tokens.
const MAXIMUM_MESSAGE_BYTES = 64 * 1024 * 1024;

export function parseByteSize(raw: string): number {
  const match = /^(\d+)\s*(B|KiB|MiB)?$/.exec(raw.trim());
  if (match === null) throw new Error('expected a size in bytes such as 65536, 64KiB or 1MiB');
  const bytes = Number(match[1]) * (BYTE_UNITS[match[2] ?? ''] as number);
  // Below 16KiB, reflection's own answers (file descriptors) and a ListKeys of RSA keys would not fit.
  if (bytes < 16 * 1024 || bytes > MAXIMUM_MESSAGE_BYTES) throw new Error('must be between 16KiB and 64MiB');
  return bytes;
}

function byteSizeBetween(minimum: number, maximum: number): (raw: string) => number {
  const describe = (bytes: number) => (bytes % 1024 === 0 && bytes > 0 ? `${bytes / 1024}KiB` : `${bytes} bytes`);
  return (raw) => {
    const match = /^(\d+)\s*(B|KiB|MiB)?$/.exec(raw.trim());
    if (match === null) throw new Error('expected a size in bytes such as 8192, 8KiB or 1MiB');
    const bytes = Number(match[1]) * (BYTE_UNITS[match[2] ?? ''] as number);
    if (bytes < minimum || bytes > maximum) throw new Error(`must be between ${describe(minimum)} and ${describe(maximum)}`);
    return bytes;
  };
}

function countBetween(minimum: number, maximum: number): (raw: string) => number {
  return (raw) => {
    const count = parseCount(raw);
    if (count < minimum || count > maximum) throw new Error(`expected a whole number from ${minimum} to ${maximum}`);
    return count;
  };
}

/** A size in whole MiB (Node.js counts HTTP/2 session memory in megabytes): the number of MiB. */
function wholeMebibytes(minimum: number, maximum: number): (raw: string) => number {
  return (raw) => {
    const match = /^(\d+)\s*(B|KiB|MiB)?$/.exec(raw.trim());
    if (match === null) throw new Error('expected a size such as 10MiB');
    const bytes = Number(match[1]) * (BYTE_UNITS[match[2] ?? ''] as number);
    const mebibytes = bytes / BYTE_UNITS.MiB!;
    if (!Number.isInteger(mebibytes) || mebibytes < minimum || mebibytes > maximum) {
      throw new Error(`must be a whole number of MiB from ${minimum}MiB to ${maximum}MiB`);
    }
    return mebibytes;
  };
}

/** Standard or URL-safe base64 of at least 32 bytes. */
export function parseMasterKey(raw: string): Uint8Array {
  const text = raw.trim();
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) throw new Error('expected base64 of at least 32 random bytes');
  const bytes = Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (bytes.length < 32) {
    throw new Error(`decodes to ${bytes.length} bytes; at least 32 random bytes are needed (e.g. \`openssl rand -base64 32\`)`);
  }
  return new Uint8Array(bytes);
}

function parseMasterKeyFile(raw: string): Uint8Array {
  let contents: string;
  try {
    contents = readFileSync(raw.trim(), 'utf8');
  } catch (error) {
    throw new Error(`cannot read the file: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  return parseMasterKey(contents);
}

function parseRedisUrl(raw: string): string {
  const url = raw.trim();
  // The store's own parser: what it accepts is exactly what works. Its
  // messages never repeat the URL, which may hold a password.
  parseRedisTarget(url);
  return url;
}

function parseTlsGroups(raw: string): string {
  const value = raw.trim();
  if (value === '') throw new Error('expected an OpenSSL group list such as X25519MLKEM768:X25519');
  try {
    // OpenSSL itself decides what a group list may name.
    createSecureContext({ ecdhCurve: value });
  } catch {
    throw new Error(`OpenSSL ${process.versions.openssl} does not know every group in "${value}" (names are separated by colons, e.g. X25519MLKEM768:X25519)`);
  }
  return value;
}

function parseAlgorithm(raw: string): SigningAlgorithm {
  const value = raw.trim();
  if (!isSigningAlgorithm(value)) throw new Error(`expected one of ${SIGNING_ALGORITHMS.join(', ')}`);
  if ((POST_QUANTUM_SIGNING_ALGORITHMS as readonly string[]).includes(value)) {
    try {
      // Refused here rather than when the first key is made, which start-up would retry for ever.
      generateKeyPairSync(value.toLowerCase() as 'ml-dsa-65');
    } catch {
      throw new Error(`${value} needs Node.js 24.7 or later with OpenSSL 3.5; this is Node.js ${process.versions.node} with OpenSSL ${process.versions.openssl}`);
    }
  }
  return value;
}

function parseLogLevel(raw: string): LogLevel {
  const value = raw.trim().toLowerCase();
  const level = LOG_LEVELS.find((candidate) => candidate === value);
  if (level === undefined) throw new Error(`expected one of ${LOG_LEVELS.join(', ')}`);
  return level;
}

function parseIssuer(raw: string): string {
  const value = raw.trim();
  if (value === '') throw new Error('must not be empty');
  return value;
}

export const SETTINGS = {
  host: required({
    env: 'TALLY_HOST',
    default: '0.0.0.0',
    description:
      'Address both ports bind to. All interfaces by default, so Tally in a container is reachable; 127.0.0.1 keeps it to this machine.',
    parse: parseHost,
  }),
  grpcPort: required({
    env: 'TALLY_GRPC_PORT',
    default: '50051',
    description: 'Port for gRPC: TokenService, Envoy ext_authz (envoy.service.auth.v3.Authorization), grpc.health.v1.Health and server reflection. 0 picks a free port.',
    parse: parsePort,
  }),
  httpPort: required({
    env: 'TALLY_HTTP_PORT',
    default: '8080',
    description: 'Port for HTTP: TokenService over Connect and gRPC-Web, /oauth2/introspect, /oauth2/revoke, /.well-known/jwks.json, /.well-known/internal-jwks.json, /metrics, /healthz and /readyz. 0 picks a free port.',
    parse: parsePort,
  }),
  redisUrl: optional({
    env: 'TALLY_REDIS_URL',
    description:
      'Redis for tokens, revocations and keys: redis://, rediss://, redis+sentinel://host:port,.../master or redis+cluster://host:port,... Unset: an in-memory store that nothing shares and that is lost on exit.',
    secret: true,
    parse: parseRedisUrl,
  }),
  redisCommandTimeoutMs: required({
    env: 'TALLY_REDIS_COMMAND_TIMEOUT',
    default: '1s',
    description: 'How long one Redis command may take before the call fails as UNAVAILABLE.',
    parse: positiveDuration,
  }),
  masterKey: optional({
    env: 'TALLY_MASTER_KEY',
    description:
      'Base64 of at least 32 random bytes; token hashing and key encryption keys derive from it. Required with Redis; in memory a random one is made.',
    secret: true,
    parse: parseMasterKey,
  }),
  masterKeyFromFile: optional({
    env: 'TALLY_MASTER_KEY_FILE',
    description: 'A file holding TALLY_MASTER_KEY (e.g. a mounted secret). Set this or TALLY_MASTER_KEY, not both.',
    parse: parseMasterKeyFile,
  }),
  issuer: required({
    env: 'TALLY_ISSUER',
    default: 'tally',
    description: 'The issuer named in tokens (the JWT "iss"). Set it to the URL your clients know Tally by.',
    parse: parseIssuer,
  }),
  defaultTtlMs: required({
    env: 'TALLY_TOKEN_TTL',
    default: '1h',
    description: 'Lifetime of a token whose Issue request sets no ttl.',
    parse: positiveDuration,
  }),
  maxTtlMs: required({
    env: 'TALLY_MAX_TOKEN_TTL',
    default: '24h',
    description: 'Longest lifetime Issue accepts; old signing keys are kept this long plus the clock skew.',
    parse: positiveDuration,
  }),
  clockSkewMs: required({
    env: 'TALLY_CLOCK_SKEW',
    default: '60s',
    description: 'Tolerance for clocks that disagree: JWT times (nbf, exp) are checked with it, token and key times are judged on the store\'s clock read to within half of it, and a replica whose own clock is further off the store\'s logs a warning.',
    parse: parseDuration,
  }),
  keyAlgorithm: required({
    env: 'TALLY_KEY_ALGORITHM',
    default: 'EdDSA',
    description: `Algorithm of the first signing key, which is the default (signs JWTs whose Issue names no algorithm; SetDefaultAlgorithm moves it): ${SIGNING_ALGORITHMS.join(', ')}. ML-DSA-* are the post-quantum ones (RFC 9964).`,
    parse: parseAlgorithm,
  }),
  keyRefreshMs: required({
    env: 'TALLY_KEY_REFRESH_INTERVAL',
    default: '1s',
    description: 'How often the key ring is re-read, so a rotation on another replica is seen within this time.',
    parse: positiveDuration,
  }),
  keyRotationIntervalMs: optional({
    env: 'TALLY_KEY_ROTATION_INTERVAL',
    description:
      'Rotate each active signing key (one per algorithm in use) on this schedule (e.g. 24h); exactly one replica makes each new key. Unset: keys change only on RotateKeys.',
    parse: parseRotationInterval,
  }),
  healthCheckIntervalMs: required({
    env: 'TALLY_HEALTH_CHECK_INTERVAL',
    default: '1s',
    description: 'How often the store is pinged to decide readiness (gRPC health and /readyz).',
    parse: positiveDuration,
  }),
  maxMessageBytes: required({
    env: 'TALLY_MAX_MESSAGE_BYTES',
    default: '64KiB',
    description: 'Largest request or response message on either port; larger ones fail with RESOURCE_EXHAUSTED.',
    parse: parseByteSize,
  }),
  maxConnections: required({
    env: 'TALLY_MAX_CONNECTIONS',
    default: '1000',
    description:
      'Open connections each port accepts; past it a new connection is closed at once, before a byte is read. Bounds what clients with no credential can hold open.',
    parse: countBetween(1, 1_000_000),
  }),
  grpcMaxConcurrentStreams: required({
    env: 'TALLY_GRPC_MAX_CONCURRENT_STREAMS',
    default: '100',
    description: 'Calls one connection may have in flight on the gRPC port (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS); more are refused.',
    parse: countBetween(1, 10_000),
  }),
  grpcMaxSessionMemory: required({
    env: 'TALLY_GRPC_MAX_SESSION_MEMORY',
    default: '10MiB',
    description:
      'Memory one gRPC connection may hold in buffered frames, in whole MiB; while over it, the connection\'s new calls are refused (ENHANCE_YOUR_CALM).',
    parse: wholeMebibytes(1, 1024),
  }),
  grpcMaxConnectionIdleMs: required({
    env: 'TALLY_GRPC_MAX_CONNECTION_IDLE',
    default: '5m',
    description: 'A gRPC connection with no call in flight for this long is closed (GOAWAY); clients reconnect when they next call.',
    parse: positiveDuration,
  }),
  grpcMaxConnectionAgeMs: required({
    env: 'TALLY_GRPC_MAX_CONNECTION_AGE',
    default: '1h',
    description:
      'A gRPC connection is asked to close (GOAWAY) after this long, so none is held forever and clients spread over replicas; calls in flight get TALLY_GRPC_MAX_CONNECTION_AGE_GRACE to finish.',
    parse: positiveDuration,
  }),
  grpcMaxConnectionAgeGraceMs: required({
    env: 'TALLY_GRPC_MAX_CONNECTION_AGE_GRACE',
    default: '30s',
    description: 'How long calls in flight on a connection past TALLY_GRPC_MAX_CONNECTION_AGE may take before it is cut.',
    parse: positiveDuration,
  }),
  httpHeadersTimeoutMs: required({
    env: 'TALLY_HTTP_HEADERS_TIMEOUT',
    default: '10s',
    description: 'On the HTTP port, a request whose headers have not all arrived this long after it began is answered 408 and its connection closed.',
    parse: positiveDuration,
  }),
  httpRequestTimeoutMs: required({
    env: 'TALLY_HTTP_REQUEST_TIMEOUT',
    default: '30s',
    description:
      'On the HTTP port, a request (headers and body) not fully received this long after it began is answered 408 and its connection closed. At least TALLY_HTTP_HEADERS_TIMEOUT.',
    parse: positiveDuration,
  }),
  shutdownTimeoutMs: required({
    env: 'TALLY_SHUTDOWN_TIMEOUT',
    default: '10s',
    description: 'On SIGTERM or SIGINT, how long in-flight calls may take to finish before the process stops anyway.',
    parse: positiveDuration,
  }),
  callersFile: optional({
    env: 'TALLY_CALLERS_FILE',
    description:
      'JSON file of the callers allowed in, their credentials (API key hashes, TLS identities) and permissions; re-read when it changes. Unset: no callers, so protected mode decides.',
    parse: parseReadableFile,
  }),
  protectedMode: required({
    env: 'TALLY_PROTECTED_MODE',
    default: 'yes',
    description:
      'With no callers configured, serve loopback clients only (yes), or every client with every permission (no: only behind a network boundary you trust).',
    parse: parseYesNo,
  }),
  callersAllowEmpty: required({
    env: 'TALLY_CALLERS_ALLOW_EMPTY',
    default: 'no',
    description:
      'Whether a running Tally may take a callers file that now lists no callers (yes: protected mode then decides). No: such a reload is refused with an error in the log, and the previous callers stay.',
    parse: parseYesNo,
  }),
  tlsCertFile: optional({
    env: 'TALLY_TLS_CERT_FILE',
    description:
      'PEM certificate chain both ports serve TLS with (with TALLY_TLS_KEY_FILE); re-read when it changes, so certificates rotate without a restart. Unset: both ports are plaintext.',
    parse: parseReadableFile,
  }),
  tlsKeyFile: optional({
    env: 'TALLY_TLS_KEY_FILE',
    description: 'PEM private key of TALLY_TLS_CERT_FILE; re-read when it changes.',
    parse: parseReadableFile,
  }),
  tlsClientCaFile: optional({
    env: 'TALLY_TLS_CLIENT_CA_FILE',
    description:
      'PEM CA certificates for client certificates. Set: mutual TLS on both ports, every client must present a certificate this CA signed, and callers may be named by its SPIFFE ID or subject (tls_identity). Re-read when it changes.',
    parse: parseReadableFile,
  }),
  tlsGroups: optional({
    env: 'TALLY_TLS_GROUPS',
    description:
      'Key exchange groups both TLS ports accept, as an OpenSSL group list (like nginx\'s ssl_ecdh_curve or Envoy\'s ecdh_curves), e.g. X25519MLKEM768 to require post-quantum hybrid key exchange; a client that offers none of them fails the handshake and the log says so. Unset: OpenSSL\'s own list, which offers X25519MLKEM768 first and still serves classical clients.',
    parse: parseTlsGroups,
  }),
  scanLimitPerSecond: required({
    env: 'TALLY_SCAN_LIMIT_RATE',
    default: '100',
    description:
      'Introspections of unknown, forged or malformed tokens one caller may make per second, sustained; past it (and the burst) its introspections fail with RESOURCE_EXHAUSTED until it slows down, which stops token scanning. 0 turns the limit off.',
    parse: parseCount,
  }),
  scanLimitBurst: required({
    env: 'TALLY_SCAN_LIMIT_BURST',
    default: '1000',
    description: 'Introspections of unknown tokens one caller may make in a burst above TALLY_SCAN_LIMIT_RATE.',
    parse: countBetween(1, 1_000_000),
  }),
  maxTokenLength: required({
    env: 'TALLY_MAX_TOKEN_LENGTH',
    default: '49152',
    description:
      'Longest token, in characters: longer ones introspect inactive, and Issue refuses to mint a JWT longer than this. The default fits the largest JWT a default Issue can ask for signed with ML-DSA-87 (about 40,500 characters) and stays under Envoy\'s default 60 KiB request-header limit; the proto allows at most 65536.',
    parse: countBetween(256, 65_536),
  }),
  maxClaimsBytes: required({
    env: 'TALLY_MAX_CLAIMS_BYTES',
    default: '8KiB',
    description: 'Largest extra claims an Issue request may carry, as JSON; larger ones fail with INVALID_ARGUMENT on claims.',
    parse: byteSizeBetween(0, 1024 * 1024),
  }),
  cacheSize: required({
    env: 'TALLY_CACHE_SIZE',
    default: '100000',
    description:
      'Token records cached per replica for introspection from memory (Redis only); the cache stays exact through leases. 0 turns the cache and the replica\'s local view off.',
    parse: parseCount,
  }),
  leaseMs: required({
    env: 'TALLY_LEASE_MS',
    default: '2000',
    description:
      'Milliseconds a replica may answer from its local view before renewing its lease; also the longest a dead replica can hold up a Revoke.',
    parse: parseLeaseMs,
  }),
  clientLeaseMs: required({
    env: 'TALLY_CLIENT_LEASE_MS',
    default: '1000',
    description:
      'Milliseconds a client watching revocations (tally/client\'s local view) may answer from its cache after an acknowledgement renewed its lease; also the longest a dead or cut-off client can hold up a Revoke.',
    parse: parseLeaseMs,
  }),
  redisWaitReplicas: optional({
    env: 'TALLY_REDIS_WAIT_REPLICAS',
    description:
      'Redis replicas that must hold a revocation before Revoke returns (WAIT), so a failover cannot lose it. Unset: 1 with redis+sentinel:// (failover is the point of Sentinel), otherwise 0 (the primary alone).',
    parse: parseCount,
  }),
  internalKeyAlgorithm: required({
    env: 'TALLY_INTERNAL_JWT_ALGORITHM',
    default: 'EdDSA',
    description: `Algorithm of the internal key that signs ext_authz phantom tokens and RFC 9701 introspection answers (published at /.well-known/internal-jwks.json, never with the access-token keys): ${INTERNAL_SIGNING_ALGORITHMS.join(', ')}. Its seed is derived from the master key, so every replica signs alike.`,
    parse: (raw) => {
      const value = parseAlgorithm(raw);
      if (!(INTERNAL_SIGNING_ALGORITHMS as readonly string[]).includes(value)) throw new Error(`expected one of ${INTERNAL_SIGNING_ALGORITHMS.join(', ')}`);
      return value as InternalSigningAlgorithm;
    },
  }),
  phantomTokenTtlMs: required({
    env: 'TALLY_PHANTOM_TOKEN_TTL',
    default: '0s',
    description:
      'Envoy ext_authz: lifetime of the internal JWT that replaces the caller\'s token in the authorization header sent upstream (the phantom-token pattern). 0s forwards the caller\'s token unchanged.',
    parse: parseDuration,
  }),
  jwksMaxAgeMs: required({
    env: 'TALLY_JWKS_MAX_AGE',
    default: '60s',
    description:
      'Cache-Control max-age of /.well-known/jwks.json: the longest a verifier that does not refetch on an unknown "kid" may miss a key made by a rotation. Keys leave the ring long after their last token expires, so only new keys are ever missing from a cached copy.',
    parse: parseDuration,
  }),
  logLevel: required({
    env: 'TALLY_LOG_LEVEL',
    default: 'info',
    description: `Least severe log level written: ${LOG_LEVELS.join(', ')}.`,
    parse: parseLogLevel,
  }),
};

type Settings = typeof SETTINGS;
type ParsedSettings = { [Name in keyof Settings]: ReturnType<Settings[Name]['parse']> };

export interface Config extends Omit<ParsedSettings, 'masterKey' | 'masterKeyFromFile'> {
  /** From TALLY_MASTER_KEY or TALLY_MASTER_KEY_FILE; undefined when neither is set (memory store only). */
  masterKey: Uint8Array | undefined;
}

/** Start-up refused: every problem found, each naming its variable. */
export class ConfigError extends Error {
  readonly problems: string[];

  constructor(problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export type Environment = Readonly<Record<string, string | undefined>>;

export function loadConfig(environment: Environment): Config {
  const problems: string[] = [];
  const parsed: Record<string, unknown> = {};
  for (const [name, setting] of Object.entries(SETTINGS) as [keyof Settings, Setting<unknown>][]) {
    const given = environment[setting.env];
    const raw = given === undefined || given === '' ? setting.default : given;
    if (raw === undefined) {
      parsed[name] = undefined;
      continue;
    }
    try {
      parsed[name] = setting.parse(raw);
    } catch (error) {
      const shown = setting.secret === true ? '' : ` (got ${JSON.stringify(raw)})`;
      problems.push(`${setting.env}: ${(error as Error).message}${shown}`);
    }
  }
  const settings = parsed as ParsedSettings;
  const keyGivenTwice =
    (environment[SETTINGS.masterKey.env] ?? '') !== '' && (environment[SETTINGS.masterKeyFromFile.env] ?? '') !== '';
  if (keyGivenTwice) {
    problems.push(`${SETTINGS.masterKey.env} and ${SETTINGS.masterKeyFromFile.env}: set one of them, not both`);
  }
  const masterKey = settings.masterKey ?? settings.masterKeyFromFile;
  const masterKeyProblem = problems.some((problem) => problem.startsWith('TALLY_MASTER_KEY'));
  if (settings.redisUrl !== undefined && masterKey === undefined && !masterKeyProblem) {
    problems.push(
      `${SETTINGS.masterKey.env}: required with ${SETTINGS.redisUrl.env}, so that every replica and restart derives the same keys (or set ${SETTINGS.masterKeyFromFile.env})`,
    );
  }
  if (settings.defaultTtlMs !== undefined && settings.maxTtlMs !== undefined && settings.defaultTtlMs > settings.maxTtlMs) {
    problems.push(`${SETTINGS.defaultTtlMs.env}: must not be longer than ${SETTINGS.maxTtlMs.env}`);
  }
  if ((settings.tlsCertFile === undefined) !== (settings.tlsKeyFile === undefined) && !problems.some((problem) => problem.startsWith('TALLY_TLS_'))) {
    problems.push(`${SETTINGS.tlsCertFile.env} and ${SETTINGS.tlsKeyFile.env}: set both for TLS, or neither`);
  }
  if (settings.tlsGroups !== undefined && settings.tlsCertFile === undefined) {
    problems.push(`${SETTINGS.tlsGroups.env}: key exchange groups need TLS: set ${SETTINGS.tlsCertFile.env} and ${SETTINGS.tlsKeyFile.env} too`);
  }
  if (settings.httpHeadersTimeoutMs !== undefined && settings.httpRequestTimeoutMs !== undefined && settings.httpHeadersTimeoutMs > settings.httpRequestTimeoutMs) {
    problems.push(`${SETTINGS.httpHeadersTimeoutMs.env}: must not be longer than ${SETTINGS.httpRequestTimeoutMs.env}`);
  }
  if (settings.tlsClientCaFile !== undefined && settings.tlsCertFile === undefined) {
    problems.push(`${SETTINGS.tlsClientCaFile.env}: mutual TLS needs ${SETTINGS.tlsCertFile.env} and ${SETTINGS.tlsKeyFile.env} too`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const { masterKey: _fromVariable, masterKeyFromFile: _fromFile, ...rest } = settings;
  return { ...rest, masterKey };
}

/** The `--help` text. */
export function renderHelp(): string {
  const lines = [
    'Usage: tally [--help | --settings-table]',
    '',
    'Tally mints, introspects and revokes access tokens over gRPC, Connect and gRPC-Web.',
    'Every setting is an environment variable:',
    '',
  ];
  for (const setting of Object.values(SETTINGS) as Setting<unknown>[]) {
    const fallback = setting.default === undefined ? 'unset' : `default ${setting.default}`;
    lines.push(`  ${setting.env} (${fallback})`, `      ${setting.description}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The README's settings table, in Markdown. */
export function renderSettingsTable(): string {
  const rows = (Object.values(SETTINGS) as Setting<unknown>[]).map(
    (setting) => `| \`${setting.env}\` | ${setting.default === undefined ? '(unset)' : `\`${setting.default}\``} | ${setting.description.replace(/\|/g, '\\|')} |`,
  );
  return ['| Variable | Default | Meaning |', '|---|---|---|', ...rows, ''].join('\n');
}
