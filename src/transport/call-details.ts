// What a call learns about itself while it runs, for its one log line: the
// transport creates the record, the handlers fill in what only they know.

import { createContextKey, type ContextValues } from '@connectrpc/connect';
import type { InactiveReason } from '../core/types.js';

export interface CallDetails {
  /** Who called: for now the peer address. */
  caller: string;
  /** The token the call was about, by its non-secret id, when known. */
  tokenId?: string;
  /** Why an introspected token was inactive; never sent to the caller. */
  inactiveReason?: InactiveReason;
}

// No shared default record: one object per call, or the calls would write into each other's.
export const callDetailsKey = createContextKey<CallDetails | undefined>(undefined, {
  description: 'tally call details',
});

export function callDetailsOf(values: ContextValues): CallDetails | undefined {
  return values.get(callDetailsKey);
}
