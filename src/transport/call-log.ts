// One log line per call on either port: method, status, duration, caller and
// the token's id when known. Never a token: the record has no field for one,
// and log.ts redacts token paths besides.

import { Code, type ConnectError } from '@connectrpc/connect';
import type { Logger } from '../log.js';
import type { CallDetails } from './call-details.js';
import { codeName, isServerFault } from './errors.js';

export interface CallRecord {
  /** `tally.v1.TokenService/Issue` */
  method: string;
  protocol: string;
  /** 0 for success. */
  code: Code | 0;
  durationMs: number;
  details: CallDetails;
  error?: ConnectError;
}

export type CallLogger = (record: CallRecord) => void;

/**
 * Calls a client makes several times a second to keep its lease
 * (AcknowledgeRevocations: one per revocation event, and four per lease when
 * nothing happens): logged at debug when they succeed, or they would be most
 * of the log. Their failures are logged as any call's.
 */
const ROUTINE_CALLS: ReadonlySet<string> = new Set(['tally.v1.TokenService/AcknowledgeRevocations']);

export function createCallLogger(logger: Logger): CallLogger {
  // The line of a call that went well is built here from typed fields, none
  // of which can hold a token, so it skips pino's path redaction: measured at
  // about 40 µs a line against 2 µs without, on the hottest path there is.
  // Lines that carry an error keep it: a cause may hold anything.
  const plain = logger.child({}, { redact: { paths: [] } });
  return (record) => {
    const line: Record<string, unknown> = {
      method: record.method,
      protocol: record.protocol,
      code: codeName(record.code),
      duration_ms: Math.round(record.durationMs * 1000) / 1000,
      caller: record.details.caller,
    };
    if (record.details.requestId !== undefined) line.request_id = record.details.requestId;
    if (record.details.tokenId !== undefined) line.token_id = record.details.tokenId;
    if (record.details.inactiveReason !== undefined) line.inactive_reason = record.details.inactiveReason;
    const error = record.error;
    if (error === undefined) {
      if (ROUTINE_CALLS.has(record.method)) plain.debug(line, 'call');
      else plain.info(line, 'call');
    } else if (isServerFault(error)) {
      // The cause is what an operator needs; the caller only saw "internal error".
      logger.error({ ...line, err: error.cause ?? error }, 'call failed');
    } else if (record.code === Code.Unavailable) {
      // The store or key ring let us down; why is worth a warning.
      logger.warn({ ...line, error: error.rawMessage, err: error.cause }, 'call failed');
    } else {
      logger.info({ ...line, error: error.rawMessage }, 'call');
    }
  };
}
