// The interfaces the core needs from the outside world, and their contract.
// Stores are checked against this contract by test/store/conformance.ts.

import type { KeyRingSnapshot, MarkScope, StoredKey, TokenRecord } from './types.js';

/** Wall-clock time in milliseconds since the Unix epoch. Injected so tests can freeze it. */
export interface Clock {
  now(): number;
}

/**
 * Runs one step of a call (a store operation, a signature) so that a trace
 * can show it apart, as a child of the call's span. Injected: the core knows
 * no tracing library, and without tracing the step simply runs. Attributes
 * name what the step did, never a token or a secret.
 */
export type TraceStep = <T>(name: string, attributes: Readonly<Record<string, string>>, run: () => Promise<T>) => Promise<T>;

/** Cryptographically secure random bytes. Injected so tests can make them predictable. */
export interface Randomness {
  bytes(length: number): Uint8Array;
}

/**
 * Where tokens, revocations and the key ring live. Every method either
 * completes or rejects with a StoreUnavailableError; none may answer from a
 * guess. Implementations: store/memory, store/redis.
 *
 * Layout rule (Redis Cluster): no single call may need keys from two hash
 * slots; calls that touch several keys are made of single-slot steps whose
 * order gives the guarantee.
 */
/** Store reads answered from memory, at once (Store.localView). */
export interface LocalView {
  /** The record, or undefined when this process does not hold it (the store may still). */
  getToken(tokenId: string): TokenRecord | undefined;
  /** As Store.revocationMark. */
  revocationMark(scopes: ReadonlyArray<readonly [MarkScope, string]>): number;
  /** As Store.revocationSequence: every revocation at or below it is in the marks above. */
  revocationSequence(): number;
}

export interface Store {
  /**
   * The highest revocation sequence number handed out so far (0 if none).
   * Every revokeScope that returned before this call began has a number at or
   * below the answer.
   */
  revocationSequence(): Promise<number>;

  /**
   * Saves a token record, once: records never change after, so a store may
   * cache them anywhere. The store may forget it after record.expiresAt.
   */
  putToken(record: TokenRecord): Promise<void>;

  /**
   * The record saved under tokenId, or undefined if none. It may be a shared
   * frozen object: callers read it and never change it.
   */
  getToken(tokenId: string): Promise<TokenRecord | undefined>;

  /**
   * Revokes every token of a scope issued so far (scope 'token': the one
   * token with that id): takes the next revocation sequence number and raises
   * the scope's mark to it (never lowers it). The mark is kept for at least
   * keepForMs, after which every token it covered has expired. Resolves with
   * the number taken once the change is durable and every replica that
   * answers from a local view has applied it.
   */
  revokeScope(scope: MarkScope, value: string, keepForMs: number): Promise<number>;

  /**
   * The highest mark among the given scopes (0 when none has one). A token
   * whose record.sequence is below it is revoked. A 'key' mark is read alone
   * and means revoked whatever the sequence (every JWT the key signed), so a
   * store's own lower bound on marks (a store set up again, store/redis)
   * never applies to a query of 'key' marks only.
   */
  revocationMark(scopes: ReadonlyArray<readonly [MarkScope, string]>): Promise<number>;

  /**
   * What this process may answer from without a round trip right now, or
   * undefined when it holds nothing it can trust (no cache, or a view whose
   * freshness it cannot prove). Its answers are the ones getToken and
   * revocationMark would give at this moment; only the hot path uses it.
   */
  localView?(): LocalView | undefined;

  /** The key ring and its version ({ version: 0, keys: [] } when never written). */
  readKeyRing(): Promise<KeyRingSnapshot>;

  /**
   * Replaces the key ring if its version is still expectedVersion, making the
   * version expectedVersion + 1. Resolves false, changing nothing, if another
   * writer got there first.
   */
  writeKeyRing(expectedVersion: number, keys: StoredKey[]): Promise<boolean>;

  /**
   * Records the fingerprint of the master secret on first use and answers
   * whether it matches the one recorded, so replicas started with different
   * master secrets refuse to run instead of failing token by token.
   */
  checkSecretFingerprint(fingerprint: string): Promise<boolean>;

  /**
   * Calls listener when the key ring may have changed elsewhere, so replicas
   * pick up a rotation at once. Optional: without it the ring is polled.
   */
  onKeyRingChange?(listener: () => void): void;

  /**
   * The store's own clock, in milliseconds since the Unix epoch: the one
   * clock every replica judges token and key times by (see core/store-clock.ts),
   * and the one that times mark keep times.
   */
  time(): Promise<number>;

  /** Resolves when the store answers; rejects with StoreUnavailableError otherwise. */
  ping(): Promise<void>;

  /**
   * Events and leases for holders of a local view outside Tally (clients
   * watching revocations), served by this replica; undefined where it cannot
   * follow the store's events (Redis with the cache off).
   */
  readonly holders?: ViewHolders;

  close(): Promise<void>;
}

/**
 * What a holder of a view must apply, as this replica learns it: a
 * revocation mark, a change of the key ring, or `lost` when events may have
 * been missed (the store lost data, or this replica's own view had to be
 * rebuilt), after which a follower can no longer be told every event.
 */
export type StoreEvent =
  | { kind: 'mark'; sequence: number; scope: MarkScope; value: string }
  | { kind: 'keys'; sequence: number }
  | { kind: 'lost' };

/**
 * Leases on behalf of holders of a view elsewhere, kept in the store beside
 * the replicas' own: revokeScope waits for a holder's lease as it waits for
 * a replica's, until the holder has acknowledged the revocation's event or
 * its lease has lapsed.
 */
export interface ViewHolders {
  /** How long a holder's lease lasts, from each grant or renewal. */
  readonly leaseMs: number;
  /** Whether this replica follows the store's events without delay now; while not, holders must not be told they are caught up. */
  fresh(): boolean;
  /**
   * Calls listener with every event this replica applies from now on, in
   * order. `from` is the sequence it had applied before: every later event
   * reaches the listener. Undefined while the replica is not fresh.
   */
  follow(listener: (event: StoreEvent) => void): { from: number; stop(): void } | undefined;
  /**
   * Takes a lease for a holder that has applied every event up to
   * appliedSequence. Resolves with the store's sequence and time at the
   * grant: revocations numbered up to that sequence may have returned
   * without waiting for the holder.
   */
  grant(holderId: string, appliedSequence: number): Promise<{ sequence: number; time: number }>;
  /**
   * Renews a live lease, recording what the holder has applied. Resolves
   * false, granting nothing and dropping the lease, when the lease had
   * lapsed or is unknown, or when the holder has not applied an event
   * appended a whole lease ago (it does not keep up, and must not hold every
   * revocation until it fails).
   */
  renew(holderId: string, appliedSequence: number): Promise<boolean>;
  /** Drops a lease at once: the holder no longer answers from its view. */
  release(holderId: string): Promise<void>;
}
