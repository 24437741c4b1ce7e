// What a call learns about itself while it runs, for its one log line: the
// pipeline creates the record (pipeline.ts), the handlers fill in what only
// they know.

import type { InactiveReason, Introspection } from '../../core/types.js';
import type { CallSpan } from '../telemetry/tracing.js';

export interface CallDetails {
  /** The peer's address (host:port) as the transport saw it. */
  peer: string;
  /** The caller's name, once the guard knows who is calling. */
  caller?: string;
  /** The caller's own x-request-id, when it sent a well-formed one, to match our line to its logs. */
  requestId?: string;
  /** The token the call was about, by its non-secret id, when known. */
  tokenId?: string;
  /** Whether the token the call introspected was active, once known. */
  active?: boolean;
  /** Why an introspected token was inactive; never sent to the caller. */
  inactiveReason?: InactiveReason;
  /** Why an ext_authz Check denied the request it was asked about (the call itself succeeded). */
  denied?: string;
  /** The call's span, when tracing is on (tracing.ts): its ids go on the log line. */
  trace?: CallSpan;
}

/** What every introspecting call (Introspect, RFC 7662, ext_authz Check) records of the answer. */
export function recordIntrospection(details: CallDetails | undefined, result: Introspection): void {
  if (details === undefined) return;
  details.tokenId = result.tokenId;
  details.active = result.active;
  if (!result.active) details.inactiveReason = result.reason;
}

// The characters of the ids tracing and load-balancing tools make (UUIDs,
// W3C trace ids, base64), bounded: anything else is more likely an attempt to
// bloat or confuse log lines than an id, and is dropped rather than cleaned.
const REQUEST_ID = /^[A-Za-z0-9._:\/+=@-]{1,128}$/;

/** The caller's request id if it is usable for a log line; the first when several came. */
export function requestIdOf(requestId: string | string[] | undefined): string | undefined {
  const id = Array.isArray(requestId) ? requestId[0] : requestId;
  return id !== undefined && REQUEST_ID.test(id) ? id : undefined;
}
