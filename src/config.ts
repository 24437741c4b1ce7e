// Tally's configuration: every setting comes from a TALLY_* environment
// variable, read through the settings table (config/settings.ts) by the value
// parsers (config/parsers.ts); a bad value stops start-up with a message that
// names the variable. This file checks the settings against each other and is
// what the rest of Tally imports.

import { SETTINGS, type ParsedSettings, type Setting, type Settings } from './config/settings.js';
import { parseRedisUrl, type RedisTarget } from './store/redis/connection-url.js';

export { formatDuration, parseDuration } from './config/parsers.js';
export { SETTINGS, type LogLevel } from './config/settings.js';

export interface Config extends Omit<ParsedSettings, 'masterKey' | 'masterKeyFromFile'> {
  /** From TALLY_MASTER_KEY or TALLY_MASTER_KEY_FILE; undefined when neither is set (memory store only). */
  masterKey: Uint8Array | undefined;
  /** The deployment TALLY_REDIS_URL names (standalone, Sentinel or Cluster), read by the store's own parser; undefined for the memory store. */
  redis: RedisTarget | undefined;
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
  return { ...rest, masterKey, redis: settings.redisUrl === undefined ? undefined : parseRedisUrl(settings.redisUrl) };
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
  lines.push(
    '',
    'OpenTelemetry tracing takes the standard OTEL_* variables (README, "Tracing"): it is on once',
    'OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or OTEL_TRACES_EXPORTER=otlp) is set.',
  );
  return `${lines.join('\n')}\n`;
}

/** The README's settings table, in Markdown. */
export function renderSettingsTable(): string {
  const rows = (Object.values(SETTINGS) as Setting<unknown>[]).map(
    (setting) => `| \`${setting.env}\` | ${setting.default === undefined ? '(unset)' : `\`${setting.default}\``} | ${setting.description.replace(/\|/g, '\\|')} |`,
  );
  return ['| Variable | Default | Meaning |', '|---|---|---|', ...rows, ''].join('\n');
}
