// The root logger: JSON lines on stdout. Token values must never reach a log
// line, so every path where one could appear is redacted by pino itself,
// whatever a caller passes in; code logs `token_id` instead.

import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from './config.js';

export type { Logger } from 'pino';

/**
 * Paths that can hold a token, a credential or the master secret, at the top
 * level and one object down (request, response, headers, metadata...).
 */
const REDACTED_PATHS = [
  'token',
  '*.token',
  'access_token',
  '*.access_token',
  'refresh_token',
  '*.refresh_token',
  'authorization',
  '*.authorization',
  '*.headers.authorization',
  '*.metadata.authorization',
  'cookie',
  '*.cookie',
  '*.headers.cookie',
  'masterKey',
  '*.masterKey',
  'master_key',
  '*.master_key',
];

export interface LoggerOptions {
  level: LogLevel;
  /** Where lines go; stdout by default. Tests pass a stream to read them back. */
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { service: 'tally' },
      // "warn" reads better than 40 for people and for log queries alike.
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      serializers: { err: pino.stdSerializers.err },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
