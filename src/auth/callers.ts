// Who may call Tally, read from the callers file (TALLY_CALLERS_FILE):
//   {"callers": [{"name": "orders", "permissions": ["introspect"],
//     "audiences": ["orders"], "api_key_sha256": ["<hex>"],
//     "tls_identity": "spiffe://example.org/orders"}]}
// API keys are kept only as SHA-256 hashes; two per caller let a key be
// rolled over without downtime. A caller needs at least one credential.

import { canonicalTlsIdentity } from './tls-identity.js';

// ext_authz: Envoy sidecars' Check, outside the scan limit (their traffic is end users');
// metrics: the reasons behind inactive introspections on /metrics (docs/security.md).
export const PERMISSIONS = ['introspect', 'issue', 'revoke', 'keys', 'ext_authz', 'metrics'] as const;
export type Permission = (typeof PERMISSIONS)[number];

export interface Caller {
  name: string;
  permissions: ReadonlySet<Permission>;
  /** When set, the caller only sees and makes tokens naming one of these audiences. */
  audiences?: readonly string[];
}

export interface CallerDirectory {
  callers: readonly Caller[];
  byApiKeyHash: ReadonlyMap<string, Caller>;
  byTlsIdentity: ReadonlyMap<string, Caller>;
}

const MAX_API_KEYS_PER_CALLER = 2;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const NAME = /^[A-Za-z0-9._-]{1,64}$/;

export class CallersFileError extends Error {}

function fail(path: string, message: string): never {
  throw new CallersFileError(`${path}: ${message}`);
}

function stringList(value: unknown, path: string): string[] {
  if (!Array.isArray(value) || value.some((entry) => typeof entry !== 'string' || entry === '')) {
    fail(path, 'must be a list of non-empty strings');
  }
  return value as string[];
}

/** Parses and checks a callers file; every error names the entry and field at fault. */
export function parseCallers(text: string): CallerDirectory {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    fail('callers file', 'is not valid JSON');
  }
  if (typeof document !== 'object' || document === null || !Array.isArray((document as { callers?: unknown }).callers)) {
    fail('callers file', 'must be an object with a "callers" list');
  }
  const entries = (document as { callers: unknown[] }).callers;
  const callers: Caller[] = [];
  const byApiKeyHash = new Map<string, Caller>();
  const byTlsIdentity = new Map<string, Caller>();
  const names = new Set<string>();
  const known = new Set(['name', 'permissions', 'audiences', 'api_key_sha256', 'tls_identity']);

  entries.forEach((entry, index) => {
    const at = `callers[${index}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) fail(at, 'must be an object');
    const fields = entry as Record<string, unknown>;
    for (const field of Object.keys(fields)) if (!known.has(field)) fail(`${at}.${field}`, 'is not a known field');

    const name = fields.name;
    if (typeof name !== 'string' || !NAME.test(name)) fail(`${at}.name`, 'must be 1-64 letters, digits, ".", "_" or "-"');
    if (names.has(name)) fail(`${at}.name`, `"${name}" is used twice`);
    names.add(name);

    const permissions = stringList(fields.permissions ?? [], `${at}.permissions`);
    for (const permission of permissions) {
      if (!(PERMISSIONS as readonly string[]).includes(permission)) {
        fail(`${at}.permissions`, `"${permission}" is not one of ${PERMISSIONS.join(', ')}`);
      }
    }

    const caller: Caller = { name, permissions: new Set(permissions as Permission[]) };
    if (fields.audiences !== undefined) {
      const audiences = stringList(fields.audiences, `${at}.audiences`);
      if (audiences.length === 0) fail(`${at}.audiences`, 'must name at least one audience when present');
      caller.audiences = audiences;
    }

    const hashes = stringList(fields.api_key_sha256 ?? [], `${at}.api_key_sha256`);
    if (hashes.length > MAX_API_KEYS_PER_CALLER) fail(`${at}.api_key_sha256`, `holds at most ${MAX_API_KEYS_PER_CALLER} keys (the current one and the next)`);
    hashes.forEach((hash, hashIndex) => {
      const normalised = hash.toLowerCase();
      if (!SHA256_HEX.test(normalised)) fail(`${at}.api_key_sha256[${hashIndex}]`, 'must be the 64 hex digits of a SHA-256');
      if (byApiKeyHash.has(normalised)) fail(`${at}.api_key_sha256[${hashIndex}]`, 'is the hash of a key another caller has');
      byApiKeyHash.set(normalised, caller);
    });

    const tlsIdentity = fields.tls_identity;
    if (tlsIdentity !== undefined) {
      if (typeof tlsIdentity !== 'string' || tlsIdentity === '') fail(`${at}.tls_identity`, 'must be a non-empty string');
      let identity: string;
      try {
        identity = canonicalTlsIdentity(tlsIdentity);
      } catch (error) {
        fail(`${at}.tls_identity`, (error as Error).message);
      }
      if (byTlsIdentity.has(identity)) fail(`${at}.tls_identity`, 'is the identity of another caller');
      byTlsIdentity.set(identity, caller);
    }
    if (hashes.length === 0 && tlsIdentity === undefined) fail(at, 'needs a credential: api_key_sha256 or tls_identity');
    callers.push(caller);
  });
  return { callers, byApiKeyHash, byTlsIdentity };
}

export const NO_CALLERS: CallerDirectory = { callers: [], byApiKeyHash: new Map(), byTlsIdentity: new Map() };
