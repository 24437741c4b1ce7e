// What a call learns about itself while it runs, for its one log line: the
// transport creates the record, the handlers fill in what only they know.

import { createContextKey, type ContextValues } from '@connectrpc/connect';
import type { InactiveReason, Introspection } from '../core/types.js';
import type { CallSpan } from './tracing.js';

export interface CallDetails {
  /** Who called: the caller's name once the guard knows it, the peer address before. */
  caller: string;
  /** The caller's own x-request-id, when it sent a well-formed one, to match our line to its logs. */
  requestId?: string;
  /** The token the call was about, by its non-secret id, when known. */
  tokenId?: string;
  /** Whether the token the call introspected was active, once known. */
  active?: boolean;
  /** Why an introspected token was inactive; never sent to the caller. */
  inactiveReason?: InactiveReason;
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

// No shared default record: one object per call, or the calls would write into each other's.
export const callDetailsKey = createContextKey<CallDetails | undefined>(undefined, {
  description: 'tally call details',
});

export function callDetailsOf(values: ContextValues): CallDetails | undefined {
  return values.get(callDetailsKey);
}

// The characters of the ids tracing and load-balancing tools make (UUIDs,
// W3C trace ids, base64), bounded: anything else is more likely an attempt to
// bloat or confuse log lines than an id, and is dropped rather than cleaned.
const REQUEST_ID = /^[A-Za-z0-9._:\/+=@-]{1,128}$/;

/** The call's details as a transport first knows them: the peer, and the caller's request id if usable. */
export function startCallDetails(peerAddress: string, requestId: string | string[] | undefined): CallDetails {
  const id = Array.isArray(requestId) ? requestId[0] : requestId;
  return id !== undefined && REQUEST_ID.test(id) ? { caller: peerAddress, requestId: id } : { caller: peerAddress };
}
