// The settings table: every TALLY_* variable Tally reads, with its default
// as an operator would write it, what it does, and the parser that reads it
// (config/parsers.ts). `--help`, `--settings-table` (the README's table),
// `tally check settings`, loadConfig and the deploy tests all read this one
// object, so they cannot drift apart. Where a module owns a default (the
// store's command timeout and lease, the core's token and claims limits, the
// internal key's algorithm), the table shows that module's constant.

import { DEFAULT_INTERNAL_SIGNING_ALGORITHM, INTERNAL_SIGNING_ALGORITHMS } from '../core/keys/internal-key.js';
import { MINIMUM_MASTER_KEY_BYTES } from '../core/secrets.js';
import { SIGNING_ALGORITHMS } from '../core/types.js';
import { DEFAULT_MAX_CLAIMS_BYTES, DEFAULT_MAX_TOKEN_LENGTH } from '../core/validation.js';
import { DEFAULT_COMMAND_TIMEOUT_MS, DEFAULT_HOLDER_LEASE_MS, DEFAULT_LEASE_MS } from '../store/redis/defaults.js';
import {
  byteSizeBetween,
  checkedRedisUrl,
  countBetween,
  durationAtLeast,
  formatByteSize,
  formatDuration,
  millisecondsBetween,
  nonEmpty,
  oneOf,
  parseAlgorithm,
  parseCount,
  parseDuration,
  parseHost,
  parseInternalAlgorithm,
  parseMasterKey,
  parseMasterKeyFile,
  parsePort,
  parseReadableFile,
  parseTlsGroups,
  parseYesNo,
  positiveDuration,
  wholeMebibytes,
} from './parsers.js';

export interface Setting<T> {
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
    parse: checkedRedisUrl,
  }),
  redisCommandTimeoutMs: required({
    env: 'TALLY_REDIS_COMMAND_TIMEOUT',
    default: formatDuration(DEFAULT_COMMAND_TIMEOUT_MS),
    description: 'How long one Redis command may take before the call fails as UNAVAILABLE.',
    parse: positiveDuration,
  }),
  masterKey: optional({
    env: 'TALLY_MASTER_KEY',
    description:
      `Base64 of at least ${MINIMUM_MASTER_KEY_BYTES} random bytes; token hashing and key encryption keys derive from it. Required with Redis; in memory a random one is made.`,
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
    parse: nonEmpty,
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
    // Each rotation keeps the old key verifying for the longest token lifetime;
    // a schedule faster than seconds would only grow the key ring.
    parse: durationAtLeast(1_000),
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
    // Below 16KiB, reflection's own answers (file descriptors) and a ListKeys of RSA keys would not fit;
    // gRPC length-prefixes messages with 32 bits, and far below that is already absurd for tokens.
    parse: byteSizeBetween(16 * 1024, 64 * 1024 * 1024, '65536, 64KiB or 1MiB'),
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
    default: String(DEFAULT_MAX_TOKEN_LENGTH),
    description:
      'Longest token, in characters: longer ones introspect inactive, and Issue refuses to mint a JWT longer than this. The default fits the largest JWT a default Issue can ask for signed with ML-DSA-87 (about 40,500 characters) and stays under Envoy\'s default 60 KiB request-header limit; the proto allows at most 65536.',
    parse: countBetween(256, 65_536),
  }),
  maxClaimsBytes: required({
    env: 'TALLY_MAX_CLAIMS_BYTES',
    default: formatByteSize(DEFAULT_MAX_CLAIMS_BYTES),
    description: 'Largest extra claims an Issue request may carry, as JSON; larger ones fail with INVALID_ARGUMENT on claims.',
    parse: byteSizeBetween(0, 1024 * 1024, '8192, 8KiB or 1MiB'),
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
    default: String(DEFAULT_LEASE_MS),
    description:
      'Milliseconds a replica may answer from its local view before renewing its lease; also the longest a dead replica can hold up a Revoke.',
    parse: millisecondsBetween(100, 60_000),
  }),
  clientLeaseMs: required({
    env: 'TALLY_CLIENT_LEASE_MS',
    default: String(DEFAULT_HOLDER_LEASE_MS),
    description:
      'Milliseconds a client watching revocations (tally/client\'s local view) may answer from its cache after an acknowledgement renewed its lease; also the longest a dead or cut-off client can hold up a Revoke.',
    parse: millisecondsBetween(100, 60_000),
  }),
  redisWaitReplicas: optional({
    env: 'TALLY_REDIS_WAIT_REPLICAS',
    description:
      'Redis replicas that must hold a revocation before Revoke returns (WAIT), so a failover cannot lose it. Unset: 1 with redis+sentinel:// (failover is the point of Sentinel), otherwise 0 (the primary alone).',
    parse: parseCount,
  }),
  internalKeyAlgorithm: required({
    env: 'TALLY_INTERNAL_JWT_ALGORITHM',
    default: DEFAULT_INTERNAL_SIGNING_ALGORITHM,
    description: `Algorithm of the internal key that signs ext_authz phantom tokens and RFC 9701 introspection answers (published at /.well-known/internal-jwks.json, never with the access-token keys): ${INTERNAL_SIGNING_ALGORITHMS.join(', ')}. Its seed is derived from the master key, so every replica signs alike.`,
    parse: parseInternalAlgorithm,
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
    description: `Least severe log level written: ${LOG_LEVELS.join(', ')}. Every call gets a line at info, except a read that found all well (an active introspection, an ext_authz allow, a key set), which is at debug (README, "Logs").`,
    parse: oneOf(LOG_LEVELS),
  }),
};

export type Settings = typeof SETTINGS;
export type ParsedSettings = { [Name in keyof Settings]: ReturnType<Settings[Name]['parse']> };
