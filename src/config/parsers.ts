// The value parsers of the TALLY_* settings (config/settings.ts names which
// parser reads which variable). Each takes the text as the operator wrote it
// and returns the value or throws an Error whose message says what was
// expected; loadConfig adds the variable's name. Where a module owns a
// default as a number, the format* functions write it back as an operator
// would, so the settings table shows the module's own constant.

import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { createSecureContext } from 'node:tls';
import { generateKeyPairSync } from 'node:crypto';
import { parseRedisUrl } from '../store/redis/connection-url.js';
import { INTERNAL_SIGNING_ALGORITHMS, type InternalSigningAlgorithm } from '../core/keys/internal-key.js';
import { MINIMUM_MASTER_KEY_BYTES } from '../core/secrets.js';
import { isSigningAlgorithm, POST_QUANTUM_SIGNING_ALGORITHMS, SIGNING_ALGORITHMS, type SigningAlgorithm } from '../core/types.js';

type Parser<T> = (raw: string) => T;

// ---- Durations --------------------------------------------------------------

/** Largest first: formatDuration picks the largest unit that divides evenly. */
const DURATION_UNITS_MS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000, ms: 1 } as const;
const DURATION_EXPECTED = 'expected a duration such as 500ms, 90s, 15m, 1h or 1h30m';

/** Parses `500ms`, `90s`, `15m`, `1h`, `1d` and sums such as `1h30m`. A bare number has no unit and is refused. */
export function parseDuration(raw: string): number {
  const text = raw.trim();
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;
  let total = 0;
  let position = 0;
  while (position < text.length) {
    part.lastIndex = position;
    const match = part.exec(text);
    if (match === null) throw new Error(DURATION_EXPECTED);
    total += Number(match[1]) * DURATION_UNITS_MS[match[2] as keyof typeof DURATION_UNITS_MS];
    position = part.lastIndex;
  }
  if (text.length === 0) throw new Error(DURATION_EXPECTED);
  if (!Number.isSafeInteger(Math.round(total))) throw new Error('the duration is too long');
  return Math.round(total);
}

/** A whole number of milliseconds as parseDuration reads it back: 1000 is `1s`, 90000 is `90s`. */
export function formatDuration(milliseconds: number): string {
  for (const [unit, size] of Object.entries(DURATION_UNITS_MS)) {
    if (milliseconds !== 0 && milliseconds % size === 0) return `${milliseconds / size}${unit}`;
  }
  return `${milliseconds}ms`;
}

export function positiveDuration(raw: string): number {
  const milliseconds = parseDuration(raw);
  if (milliseconds <= 0) throw new Error('must be longer than zero');
  return milliseconds;
}

export function durationAtLeast(minimumMs: number): Parser<number> {
  return (raw) => {
    const milliseconds = parseDuration(raw);
    if (milliseconds < minimumMs) throw new Error(`must be at least ${formatDuration(minimumMs)}`);
    return milliseconds;
  };
}

// ---- Numbers ----------------------------------------------------------------

export function parseCount(raw: string): number {
  if (!/^\d+$/.test(raw.trim())) throw new Error('expected a whole number, 0 or more');
  const count = Number(raw);
  if (!Number.isSafeInteger(count)) throw new Error('the number is too large');
  return count;
}

export function countBetween(minimum: number, maximum: number): Parser<number> {
  return (raw) => {
    const count = parseCount(raw);
    if (count < minimum || count > maximum) throw new Error(`expected a whole number from ${minimum} to ${maximum}`);
    return count;
  };
}

/** A bare number of milliseconds (for settings named *_MS), not a duration with a unit. */
export function millisecondsBetween(minimum: number, maximum: number): Parser<number> {
  return (raw) => {
    const milliseconds = parseCount(raw);
    if (milliseconds < minimum || milliseconds > maximum) throw new Error(`expected milliseconds from ${minimum} to ${maximum}`);
    return milliseconds;
  };
}

export function parsePort(raw: string): number {
  if (!/^\d+$/.test(raw.trim())) throw new Error('expected a TCP port number (0 to 65535)');
  const port = Number(raw);
  if (port > 65_535) throw new Error('expected a TCP port number (0 to 65535)');
  return port;
}

// ---- Sizes ------------------------------------------------------------------

const BYTE_UNITS = { '': 1, B: 1, KiB: 1024, MiB: 1024 * 1024 } as const;

/** `65536`, `64KiB`, `1MiB` in bytes; undefined when the text is not such a size. */
function readByteSize(raw: string): number | undefined {
  const match = /^(\d+)\s*(B|KiB|MiB)?$/.exec(raw.trim());
  if (match === null) return undefined;
  return Number(match[1]) * BYTE_UNITS[(match[2] ?? '') as keyof typeof BYTE_UNITS];
}

/** Bytes as readByteSize reads them back, in the largest unit that divides evenly: 8192 is `8KiB`. */
export function formatByteSize(bytes: number): string {
  if (bytes > 0 && bytes % BYTE_UNITS.MiB === 0) return `${bytes / BYTE_UNITS.MiB}MiB`;
  if (bytes > 0 && bytes % BYTE_UNITS.KiB === 0) return `${bytes / BYTE_UNITS.KiB}KiB`;
  return `${bytes} bytes`;
}

/** A size in bytes from minimum to maximum; example shows the form in the message of a value that is no size. */
export function byteSizeBetween(minimum: number, maximum: number, example: string): Parser<number> {
  return (raw) => {
    const bytes = readByteSize(raw);
    if (bytes === undefined) throw new Error(`expected a size in bytes such as ${example}`);
    if (bytes < minimum || bytes > maximum) throw new Error(`must be between ${formatByteSize(minimum)} and ${formatByteSize(maximum)}`);
    return bytes;
  };
}

/** A size in whole MiB (Node.js counts HTTP/2 session memory in megabytes): the number of MiB. */
export function wholeMebibytes(minimum: number, maximum: number): Parser<number> {
  return (raw) => {
    const bytes = readByteSize(raw);
    if (bytes === undefined) throw new Error('expected a size such as 10MiB');
    const mebibytes = bytes / BYTE_UNITS.MiB;
    if (!Number.isInteger(mebibytes) || mebibytes < minimum || mebibytes > maximum) {
      throw new Error(`must be a whole number of MiB from ${minimum}MiB to ${maximum}MiB`);
    }
    return mebibytes;
  };
}

// ---- Words and names --------------------------------------------------------

export function parseYesNo(raw: string): boolean {
  const text = raw.trim().toLowerCase();
  if (['yes', 'true', 'on', '1'].includes(text)) return true;
  if (['no', 'false', 'off', '0'].includes(text)) return false;
  throw new Error('expected yes or no');
}

/** One of choices, compared without regard to case; answered as the choice is spelt. */
export function oneOf<const Choice extends string>(choices: readonly Choice[]): Parser<Choice> {
  return (raw) => {
    const value = raw.trim().toLowerCase();
    const choice = choices.find((candidate) => candidate.toLowerCase() === value);
    if (choice === undefined) throw new Error(`expected one of ${choices.join(', ')}`);
    return choice;
  };
}

export function nonEmpty(raw: string): string {
  const value = raw.trim();
  if (value === '') throw new Error('must not be empty');
  return value;
}

export function parseHost(raw: string): string {
  const host = raw.trim();
  if (host === '' || (isIP(host) === 0 && !/^[A-Za-z0-9.-]+$/.test(host))) {
    throw new Error('expected an IP address or a host name');
  }
  return host;
}

// ---- Files ------------------------------------------------------------------

export function parseReadableFile(raw: string): string {
  const path = raw.trim();
  try {
    readFileSync(path);
  } catch (error) {
    throw new Error(`cannot read the file: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
  return path;
}

// ---- Secrets ----------------------------------------------------------------

/** Standard or URL-safe base64 of at least MINIMUM_MASTER_KEY_BYTES (core/secrets.ts). */
export function parseMasterKey(raw: string): Uint8Array {
  const text = raw.trim();
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) throw new Error(`expected base64 of at least ${MINIMUM_MASTER_KEY_BYTES} random bytes`);
  const bytes = Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (bytes.length < MINIMUM_MASTER_KEY_BYTES) {
    throw new Error(`decodes to ${bytes.length} bytes; at least ${MINIMUM_MASTER_KEY_BYTES} random bytes are needed (e.g. \`openssl rand -base64 ${MINIMUM_MASTER_KEY_BYTES}\`)`);
  }
  return new Uint8Array(bytes);
}

export function parseMasterKeyFile(raw: string): Uint8Array {
  let contents: string;
  try {
    contents = readFileSync(raw.trim(), 'utf8');
  } catch (error) {
    throw new Error(`cannot read the file: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  return parseMasterKey(contents);
}

// ---- What other parts of Tally decide ---------------------------------------

/**
 * A Redis URL, checked by the store's own parser (store/redis/connection-url.ts):
 * what it accepts is exactly what works, and its messages never repeat the
 * URL, which may hold a password. loadConfig keeps what it read as Config.redis.
 */
export function checkedRedisUrl(raw: string): string {
  const url = raw.trim();
  parseRedisUrl(url);
  return url;
}

export function parseTlsGroups(raw: string): string {
  const value = raw.trim();
  if (value === '') throw new Error('expected an OpenSSL group list such as X25519MLKEM768:X25519');
  try {
    // OpenSSL itself decides what a group list may name.
    createSecureContext({ ecdhCurve: value });
  } catch {
    throw new Error(`OpenSSL ${process.versions.openssl} does not know every group in "${value}" (names are separated by colons, e.g. X25519MLKEM768:X25519)`);
  }
  return value;
}

export function parseAlgorithm(raw: string): SigningAlgorithm {
  const value = raw.trim();
  if (!isSigningAlgorithm(value)) throw new Error(`expected one of ${SIGNING_ALGORITHMS.join(', ')}`);
  if ((POST_QUANTUM_SIGNING_ALGORITHMS as readonly string[]).includes(value)) {
    try {
      // Refused here rather than when the first key is made, which start-up would retry for ever.
      generateKeyPairSync(value.toLowerCase() as 'ml-dsa-65');
    } catch {
      throw new Error(`${value} needs Node.js 24.7 or later with OpenSSL 3.5; this is Node.js ${process.versions.node} with OpenSSL ${process.versions.openssl}`);
    }
  }
  return value;
}

export function parseInternalAlgorithm(raw: string): InternalSigningAlgorithm {
  const value = parseAlgorithm(raw);
  if (!(INTERNAL_SIGNING_ALGORITHMS as readonly string[]).includes(value)) throw new Error(`expected one of ${INTERNAL_SIGNING_ALGORITHMS.join(', ')}`);
  return value as InternalSigningAlgorithm;
}
