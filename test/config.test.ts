import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseDuration, renderHelp, renderSettingsTable, SETTINGS } from '../src/config.js';
import { formatByteSize, formatDuration } from '../src/config/parsers.js';
import { DEFAULT_INTERNAL_SIGNING_ALGORITHM } from '../src/core/keys/internal-key.js';
import { DEFAULT_MAX_CLAIMS_BYTES, DEFAULT_MAX_TOKEN_LENGTH } from '../src/core/validation.js';
import { DEFAULT_COMMAND_TIMEOUT_MS, DEFAULT_LEASE_MS } from '../src/store/redis/defaults.js';

const KEY = Buffer.alloc(32, 1).toString('base64');

function problemsOf(environment: Record<string, string>): string[] {
  try {
    loadConfig(environment);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('the configuration was accepted');
}

describe('loadConfig', () => {
  it('gives the documented defaults when nothing is set', () => {
    expect(loadConfig({})).toEqual({
      host: '0.0.0.0',
      grpcPort: 50051,
      httpPort: 8080,
      redisUrl: undefined,
      redisCommandTimeoutMs: 1_000,
      masterKey: undefined,
      issuer: 'tally',
      defaultTtlMs: 3_600_000,
      maxTtlMs: 86_400_000,
      clockSkewMs: 60_000,
      keyAlgorithm: 'EdDSA',
      internalKeyAlgorithm: 'EdDSA',
      keyRefreshMs: 1_000,
      keyRotationIntervalMs: undefined,
      healthCheckIntervalMs: 1_000,
      maxMessageBytes: 65_536,
      shutdownTimeoutMs: 10_000,
      maxConnections: 1_000,
      grpcMaxConcurrentStreams: 100,
      grpcMaxSessionMemory: 10,
      grpcMaxConnectionIdleMs: 300_000,
      grpcMaxConnectionAgeMs: 3_600_000,
      grpcMaxConnectionAgeGraceMs: 30_000,
      httpHeadersTimeoutMs: 10_000,
      httpRequestTimeoutMs: 30_000,
      callersFile: undefined,
      protectedMode: true,
      callersAllowEmpty: false,
      tlsCertFile: undefined,
      tlsKeyFile: undefined,
      tlsClientCaFile: undefined,
      scanLimitPerSecond: 100,
      scanLimitBurst: 1_000,
      maxTokenLength: 49_152,
      phantomTokenTtlMs: 0,
      jwksMaxAgeMs: 60_000,
      maxClaimsBytes: 8_192,
      cacheSize: 100_000,
      leaseMs: 2_000,
      clientLeaseMs: 1_000,
      redisWaitReplicas: undefined,
      logLevel: 'info',
    });
  });

  it('reads every TALLY_* variable', () => {
    const config = loadConfig({
      TALLY_HOST: '127.0.0.1',
      TALLY_GRPC_PORT: '6000',
      TALLY_HTTP_PORT: '0',
      TALLY_REDIS_URL: 'redis://127.0.0.1:6379/2',
      TALLY_MASTER_KEY: KEY,
      TALLY_TOKEN_TTL: '15m',
      TALLY_MAX_TOKEN_TTL: '1h30m',
      TALLY_CLOCK_SKEW: '500ms',
      TALLY_KEY_ALGORITHM: 'ES256',
      TALLY_MAX_MESSAGE_BYTES: '1MiB',
      TALLY_LOG_LEVEL: 'DEBUG',
    });
    expect(config).toMatchObject({
      host: '127.0.0.1',
      grpcPort: 6000,
      httpPort: 0,
      redisUrl: 'redis://127.0.0.1:6379/2',
      defaultTtlMs: 900_000,
      maxTtlMs: 5_400_000,
      clockSkewMs: 500,
      keyAlgorithm: 'ES256',
      maxMessageBytes: 1_048_576,
      logLevel: 'debug',
    });
    expect(Buffer.from(config.masterKey!).toString('base64')).toBe(KEY);
  });

  it.each(['ML-DSA-44', 'ML-DSA-65', 'ML-DSA-87'])('takes the post-quantum %s as TALLY_KEY_ALGORITHM on this runtime', (algorithm) => {
    expect(loadConfig({ TALLY_KEY_ALGORITHM: algorithm }).keyAlgorithm).toBe(algorithm);
  });

  it('reads the master key from TALLY_MASTER_KEY_FILE, trailing newline and all', () => {
    const directory = mkdtempSync(join(tmpdir(), 'tally-config-'));
    const file = join(directory, 'master-key');
    writeFileSync(file, `${KEY}\n`);
    expect(Buffer.from(loadConfig({ TALLY_MASTER_KEY_FILE: file }).masterKey!).toString('base64')).toBe(KEY);
  });

  describe('refuses a bad value, naming the variable', () => {
    it.each([
      ['TALLY_GRPC_PORT', 'abc'],
      ['TALLY_GRPC_PORT', '70000'],
      ['TALLY_HTTP_PORT', '-1'],
      ['TALLY_HOST', 'not a host!'],
      ['TALLY_TOKEN_TTL', '60'],
      ['TALLY_TOKEN_TTL', '0s'],
      ['TALLY_TOKEN_TTL', '1 hour'],
      ['TALLY_MAX_TOKEN_TTL', '-5m'],
      ['TALLY_CLOCK_SKEW', 'soon'],
      ['TALLY_KEY_ALGORITHM', 'HS256'],
      ['TALLY_KEY_ALGORITHM', 'ML-DSA-1024'],
      ['TALLY_INTERNAL_JWT_ALGORITHM', 'ES256'],
      ['TALLY_INTERNAL_JWT_ALGORITHM', 'none'],
      ['TALLY_KEY_REFRESH_INTERVAL', '0ms'],
      ['TALLY_REDIS_COMMAND_TIMEOUT', '1x'],
      ['TALLY_MAX_MESSAGE_BYTES', '12'],
      ['TALLY_MAX_MESSAGE_BYTES', '8KiB'],
      ['TALLY_MAX_MESSAGE_BYTES', '1GiB'],
      ['TALLY_SHUTDOWN_TIMEOUT', 'forever'],
      ['TALLY_LOG_LEVEL', 'loud'],
      ['TALLY_REDIS_URL', 'http://example.com'],
      ['TALLY_MASTER_KEY', 'c2hvcnQ='],
      ['TALLY_MASTER_KEY', 'not base64 at all!'],
      ['TALLY_MASTER_KEY_FILE', '/nonexistent/master-key'],
      ['TALLY_ISSUER', '   '],
      ['TALLY_CALLERS_FILE', '/nonexistent/callers.json'],
      ['TALLY_PROTECTED_MODE', 'maybe'],
      ['TALLY_CACHE_SIZE', '-1'],
      ['TALLY_CACHE_SIZE', 'lots'],
      ['TALLY_LEASE_MS', '10'],
      ['TALLY_LEASE_MS', '2s'],
      ['TALLY_CLIENT_LEASE_MS', '50'],
      ['TALLY_CLIENT_LEASE_MS', '1s'],
      ['TALLY_REDIS_WAIT_REPLICAS', 'one'],
      ['TALLY_KEY_ROTATION_INTERVAL', '100ms'],
      ['TALLY_KEY_ROTATION_INTERVAL', 'daily'],
      ['TALLY_TLS_GROUPS', 'X25519MLKEM768:nonsense'],
      ['TALLY_MAX_CONNECTIONS', '0'],
      ['TALLY_GRPC_MAX_CONCURRENT_STREAMS', '0'],
      ['TALLY_GRPC_MAX_SESSION_MEMORY', '1500KiB'],
      ['TALLY_GRPC_MAX_SESSION_MEMORY', '0MiB'],
      ['TALLY_GRPC_MAX_CONNECTION_IDLE', '0s'],
      ['TALLY_GRPC_MAX_CONNECTION_AGE', 'never'],
      ['TALLY_GRPC_MAX_CONNECTION_AGE_GRACE', '0s'],
      ['TALLY_HTTP_HEADERS_TIMEOUT', '0s'],
      ['TALLY_HTTP_REQUEST_TIMEOUT', 'slow'],
      ['TALLY_CALLERS_ALLOW_EMPTY', 'perhaps'],
    ])('%s=%j', (variable, value) => {
      const environment: Record<string, string> = { [variable]: value };
      if (variable === 'TALLY_REDIS_URL') environment.TALLY_MASTER_KEY = KEY;
      const problems = problemsOf(environment);
      expect(problems).toHaveLength(1);
      expect(problems[0]!.startsWith(`${variable}:`)).toBe(true);
    });
  });

  it('never repeats a secret value in its message', () => {
    const [problem] = problemsOf({ TALLY_MASTER_KEY: 'c2VjcmV0LXRvby1zaG9ydA==' });
    expect(problem).not.toContain('c2VjcmV0');
    const [redisProblem] = problemsOf({ TALLY_REDIS_URL: 'ftp://user:hunter2@host', TALLY_MASTER_KEY: KEY });
    expect(redisProblem).not.toContain('hunter2');
  });

  it('reads the Redis deployment from TALLY_REDIS_URL with the store\'s own parser, whatever the scheme\'s case', () => {
    // main.ts decides TALLY_REDIS_WAIT_REPLICAS's default from this kind.
    expect(loadConfig({ TALLY_REDIS_URL: 'REDIS+SENTINEL://s1,s2:26380/mymaster', TALLY_MASTER_KEY: KEY }).redis).toEqual({
      kind: 'sentinel',
      sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26380 }],
      masterName: 'mymaster',
      db: 0,
    });
    expect(loadConfig({ TALLY_REDIS_URL: ' redis+cluster://n1:7000,n2:7001 ', TALLY_MASTER_KEY: KEY }).redis?.kind).toBe('cluster');
    expect(loadConfig({ TALLY_REDIS_URL: 'rediss://cache.internal/1', TALLY_MASTER_KEY: KEY }).redis?.kind).toBe('standalone');
    expect(loadConfig({}).redis).toBeUndefined();
  });

  it('requires a master key with Redis', () => {
    expect(problemsOf({ TALLY_REDIS_URL: 'redis://127.0.0.1:6379' })).toEqual([expect.stringMatching(/^TALLY_MASTER_KEY: required with TALLY_REDIS_URL/)]);
  });

  it('refuses both TALLY_MASTER_KEY and TALLY_MASTER_KEY_FILE', () => {
    const directory = mkdtempSync(join(tmpdir(), 'tally-config-'));
    const file = join(directory, 'master-key');
    writeFileSync(file, KEY);
    expect(problemsOf({ TALLY_MASTER_KEY: KEY, TALLY_MASTER_KEY_FILE: file })).toEqual([
      expect.stringMatching(/^TALLY_MASTER_KEY and TALLY_MASTER_KEY_FILE: set one/),
    ]);
  });

  it('refuses a default lifetime longer than the maximum', () => {
    expect(problemsOf({ TALLY_TOKEN_TTL: '2d', TALLY_MAX_TOKEN_TTL: '1d' })).toEqual([expect.stringMatching(/^TALLY_TOKEN_TTL: /)]);
  });

  it('refuses a headers timeout longer than the request timeout', () => {
    expect(problemsOf({ TALLY_HTTP_HEADERS_TIMEOUT: '1m', TALLY_HTTP_REQUEST_TIMEOUT: '30s' })).toEqual([expect.stringMatching(/^TALLY_HTTP_HEADERS_TIMEOUT: /)]);
  });

  it('reports every bad variable at once', () => {
    expect(problemsOf({ TALLY_GRPC_PORT: 'abc', TALLY_HTTP_PORT: 'def' })).toHaveLength(2);
  });
});

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['90s', 90_000],
    ['15m', 900_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    ['1h30m', 5_400_000],
    ['1.5s', 1_500],
  ])('%s is %i ms', (text, milliseconds) => {
    expect(parseDuration(text)).toBe(milliseconds);
  });
});

describe('the defaults the settings table shows from the modules that own them', () => {
  it.each([
    [0, '0ms'],
    [500, '500ms'],
    [1_000, '1s'],
    [1_500, '1500ms'],
    [90_000, '90s'],
    [300_000, '5m'],
    [3_600_000, '1h'],
    [86_400_000, '1d'],
    [90_000_000, '25h'],
  ])('a duration of %i ms is written %s, which parseDuration reads back', (milliseconds, text) => {
    expect(formatDuration(milliseconds)).toBe(text);
    expect(parseDuration(text)).toBe(milliseconds);
  });

  it.each([
    [8_192, '8KiB'],
    [65_536, '64KiB'],
    [1_048_576, '1MiB'],
    [1_500, '1500 bytes'],
  ])('a size of %i bytes is written %s', (bytes, text) => {
    expect(formatByteSize(bytes)).toBe(text);
  });

  it('are the values the store and the core apply when given none', () => {
    const config = loadConfig({});
    expect(config.redisCommandTimeoutMs).toBe(DEFAULT_COMMAND_TIMEOUT_MS);
    expect(config.leaseMs).toBe(DEFAULT_LEASE_MS);
    expect(config.maxTokenLength).toBe(DEFAULT_MAX_TOKEN_LENGTH);
    expect(config.maxClaimsBytes).toBe(DEFAULT_MAX_CLAIMS_BYTES);
    expect(config.internalKeyAlgorithm).toBe(DEFAULT_INTERNAL_SIGNING_ALGORITHM);
  });
});

describe('--help and the README table', () => {
  it('list every setting with its default', () => {
    const help = renderHelp();
    const table = renderSettingsTable();
    for (const setting of Object.values(SETTINGS)) {
      expect(help).toContain(setting.env);
      expect(table).toContain(`\`${setting.env}\``);
      if (setting.default !== undefined) expect(help).toContain(`default ${setting.default}`);
    }
  });

  it('--help says where tracing is set, since OTEL_* variables are not TALLY_* settings', () => {
    expect(renderHelp()).toContain('OTEL_EXPORTER_OTLP_ENDPOINT');
  });
});
