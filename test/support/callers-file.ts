// Callers files for tests: API keys made fresh per run, stored only as the
// SHA-256 hex the callers file wants, written atomically (write aside, rename)
// so the server's poller never reads half a file.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCaller {
  name: string;
  permissions: string[];
  audiences?: string[];
  /** Plain keys; the file gets their hashes. */
  apiKeys?: string[];
  tlsIdentity?: string;
}

export function newApiKey(): string {
  return `key_${randomBytes(24).toString('base64url')}`;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

const directories: string[] = [];
process.once('exit', () => {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
});

export function callersDocument(callers: readonly TestCaller[]): string {
  return JSON.stringify({
    callers: callers.map((caller) => ({
      name: caller.name,
      permissions: caller.permissions,
      ...(caller.audiences === undefined ? {} : { audiences: caller.audiences }),
      ...(caller.apiKeys === undefined ? {} : { api_key_sha256: caller.apiKeys.map(sha256Hex) }),
      ...(caller.tlsIdentity === undefined ? {} : { tls_identity: caller.tlsIdentity }),
    })),
  });
}

/** Writes (or rewrites) a callers file; returns its path. */
export function writeCallersFile(callers: readonly TestCaller[], path?: string): string {
  const target = path ?? join(mkdtempSync(join(tmpdir(), 'tally-callers-')), 'callers.json');
  if (path === undefined) directories.push(join(target, '..'));
  writeFileSync(`${target}.next`, callersDocument(callers));
  renameSync(`${target}.next`, target);
  return target;
}
