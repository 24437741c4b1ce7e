// What Tally reads back from the store and bases a decision on is
// authenticated: a MAC under a key derived from the master secret, over the
// whole value in one canonical JSON form. Someone who can write to Redis but
// does not hold the master key can delete or replay what Tally wrote, but
// cannot make it trust a value it did not write: a token record whose
// subject, lifetime, claims or revocation sequence was changed, or one made
// up, fails its MAC and names no token.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { TokenRecord } from './types.js';

/** JSON with object keys sorted at every depth, so equal values always give equal bytes. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item ?? null)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** The MAC of value (every field but `mac`) for one purpose: a MAC made for one purpose never passes for another. */
export function macOf(key: Uint8Array, purpose: string, value: object): string {
  const { mac: _ignored, ...fields } = value as { mac?: unknown };
  return createHmac('sha256', key).update(`tally ${purpose} v1\n`).update(canonicalJson(fields)).digest('base64url');
}

/** Whether value carries a good MAC for purpose. Never throws, whatever the store handed back. */
export function hasValidMac(key: Uint8Array, purpose: string, value: unknown): boolean {
  try {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
    const mac = (value as { mac?: unknown }).mac;
    if (typeof mac !== 'string') return false;
    const expected = Buffer.from(macOf(key, purpose, value));
    const presented = Buffer.from(mac);
    return presented.length === expected.length && timingSafeEqual(presented, expected);
  } catch {
    return false;
  }
}

const TOKEN_RECORD = 'token-record';

export function sealRecord(record: TokenRecord, key: Uint8Array): TokenRecord {
  return { ...record, mac: macOf(key, TOKEN_RECORD, record) };
}

export function isAuthenticRecord(record: TokenRecord, key: Uint8Array): boolean {
  return hasValidMac(key, TOKEN_RECORD, record);
}
