// A callers file (TALLY_CALLERS_FILE) for the given callers, each with a
// fresh random API key; hands back the path and the keys to call with.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiKeyHash } from '../../src/auth/authenticate.js';
import type { Permission } from '../../src/auth/callers.js';

export interface TestCaller {
  name: string;
  permissions: Permission[];
  audiences?: string[];
}

export interface CallersFile {
  path: string;
  /** API key by caller name. */
  keys: Record<string, string>;
}

export function writeCallersFile(callers: readonly TestCaller[]): CallersFile {
  const keys: Record<string, string> = {};
  const entries = callers.map((caller) => {
    keys[caller.name] = `test-key-${randomBytes(16).toString('hex')}`;
    return { ...caller, api_key_sha256: [apiKeyHash(keys[caller.name]!)] };
  });
  const path = join(mkdtempSync(join(tmpdir(), 'tally-callers-')), 'callers.json');
  writeFileSync(path, JSON.stringify({ callers: entries }));
  return { path, keys };
}

/** Whether tests should print what they sent and got (TALLY_SHOW_WIRE=1), for notes and debugging. */
export function showWire(label: string, text: string): void {
  if (process.env.TALLY_SHOW_WIRE === '1') process.stdout.write(`\n----- ${label} -----\n${text}\n`);
}
