// One log line per call on either port: method, status, duration, caller,
// the token's id when known, and the trace and span ids when tracing is on.
// Never a token: the record has no field for one, and log.ts redacts token
// paths besides.

import { Code, type ConnectError } from '@connectrpc/connect';
import type { Logger } from '../../log.js';
import type { CallDetails } from './call-details.js';
import { codeName, isServerFault } from './errors.js';
import { Authorization } from '../../gen/envoy/service/auth/v3/external_auth_pb.js';
import { TokenService } from '../../gen/tally/v1/token_service_pb.js';
import { INTERNAL_JWKS_PATH, JWKS_PATH } from '../http/jwks.js';
import { INTROSPECTION_PATH } from '../http/oauth-introspect.js';

export interface CallRecord {
  /** `tally.v1.TokenService/Issue` */
  method: string;
  protocol: string;
  /** 0 for success. */
  code: Code | 0;
  durationMs: number;
  details: CallDetails;
  error?: ConnectError;
  /** The HTTP status written, for plain HTTP routes (a span records it). */
  httpStatus?: number;
}

export type CallLogger = (record: CallRecord) => void;

/**
 * The calls asked many times a second that change nothing: when one answers
 * that all is well (an active token, a request let through, a key set, a
 * watching client's acknowledgement: one per event and four per lease), its
 * line is at debug, so the default level costs the hottest path nothing
 * (README, "Logs": a line was about 15 µs of a 160 µs cache hit). Every other
 * outcome of these calls (an inactive token and why, a refusal, an error)
 * and every call of any other method (Issue, Revoke, the key calls) is
 * logged at info or above.
 */
const QUIET_WHEN_WELL: ReadonlySet<string> = new Set([
  `${TokenService.typeName}/${TokenService.method.introspect.name}`,
  `${TokenService.typeName}/${TokenService.method.acknowledgeRevocations.name}`,
  `${Authorization.typeName}/${Authorization.method.check.name}`,
  `POST ${INTROSPECTION_PATH}`,
  `GET ${JWKS_PATH}`,
  `GET ${INTERNAL_JWKS_PATH}`,
]);

export function createCallLogger(logger: Logger): CallLogger {
  // The line of a call that went well is built here from typed fields, none
  // of which can hold a token, so it skips pino's path redaction: measured at
  // about 40 µs a line against 2 µs without, on the hottest path there is.
  // Lines that carry an error keep it: a cause may hold anything.
  const plain = logger.child({}, { redact: { paths: [] } });
  const quietWhenWell = !logger.isLevelEnabled('debug');
  return (record) => {
    const { details } = record;
    const quiet = record.error === undefined && details.inactiveReason === undefined && details.denied === undefined && QUIET_WHEN_WELL.has(record.method);
    if (quiet && quietWhenWell) return;
    const line: Record<string, unknown> = {
      method: record.method,
      protocol: record.protocol,
      code: codeName(record.code),
      duration_ms: Math.round(record.durationMs * 1000) / 1000,
      peer: record.details.peer,
    };
    if (record.details.caller !== undefined) line.caller = record.details.caller;
    if (record.details.requestId !== undefined) line.request_id = record.details.requestId;
    // As OpenTelemetry's log data model names them, so a log backend links the line to its trace.
    const trace = record.details.trace;
    if (trace?.traceId !== undefined) line.trace_id = trace.traceId;
    if (trace?.spanId !== undefined) line.span_id = trace.spanId;
    if (record.details.tokenId !== undefined) line.token_id = record.details.tokenId;
    if (record.details.inactiveReason !== undefined) line.inactive_reason = record.details.inactiveReason;
    if (record.details.denied !== undefined) line.denied = record.details.denied;
    const error = record.error;
    if (quiet) {
      plain.debug(line, 'call');
    } else if (error === undefined) {
      plain.info(line, 'call');
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
