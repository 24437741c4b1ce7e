// caller new / roll / finish-roll: callers-file entries made without
// `openssl rand`, `sha256sum` and hand-edited JSON. The API key is printed
// once and never written anywhere; the file holds only its SHA-256. Every
// change is checked by the server's own parser (auth/callers.ts) before it
// is written, and written whole (aside, then renamed), so the server's
// watcher never reads half a file or a file it would refuse.

import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { apiKeyHash } from '../../auth/authenticate.js';
import { CallersFileError, parseCallers, PERMISSIONS } from '../../auth/callers.js';
import type { Command, CommandContext } from '../command.js';
import { CliError, usageError } from '../usage-error.js';

const API_KEY_PREFIX = 'tally_ak_';

interface Entry {
  name: string;
  permissions?: string[];
  audiences?: string[];
  api_key_sha256?: string[];
  tls_identity?: string;
}

interface CallersDocument {
  callers: Entry[];
}

function newApiKey(): string {
  return `${API_KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new CliError(`${path}: cannot read the callers file: ${code ?? 'unreadable'}`);
  }
}

/** Parses a callers file with the server's parser; errors name the file, the entry and the field. */
export function checkCallersText(path: string, text: string): ReturnType<typeof parseCallers> {
  try {
    return parseCallers(text);
  } catch (error) {
    if (error instanceof CallersFileError) throw new CliError(`${path}: ${error.message}`);
    throw error;
  }
}

function readDocument(path: string, mustExist: boolean): CallersDocument {
  const text = readText(path);
  if (text === undefined) {
    if (mustExist) throw new CliError(`${path}: no such callers file`);
    return { callers: [] };
  }
  checkCallersText(path, text);
  return JSON.parse(text) as CallersDocument;
}

/** Checks the new document as the server will, then replaces the file in one rename. */
function writeDocument(path: string, document: CallersDocument): void {
  const text = `${JSON.stringify(document, null, 2)}\n`;
  checkCallersText(path, text);
  let mode = 0o600;
  try {
    mode = statSync(path).mode & 0o777;
  } catch {
    // A new file: readable by its owner only, as a secret's neighbour should be.
  }
  const aside = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(aside, text, { mode });
    renameSync(aside, path);
  } catch (error) {
    throw new CliError(`${path}: cannot write the callers file: ${(error as NodeJS.ErrnoException).code ?? 'unwritable'}`);
  }
}

function nameOf(context: CommandContext): string {
  return context.positionals[0]!;
}

function callersFileOf(context: CommandContext, required: boolean): string | undefined {
  const path = context.values['callers-file'];
  if (typeof path === 'string' && path !== '') return path;
  if (required) throw usageError('--callers-file is required');
  return undefined;
}

function findEntry(document: CallersDocument, name: string, path: string): Entry {
  const entry = document.callers.find((candidate) => candidate.name === name);
  if (entry === undefined) throw new CliError(`${path}: no caller named ${JSON.stringify(name)}`);
  return entry;
}

const KEY_NOTE = 'The API key is shown only now: hand it to the caller over a secure channel. The callers file keeps only its SHA-256.';

export const newCaller: Command = {
  words: ['caller', 'new'],
  usage: `tally caller new NAME --permission PERM... [--audience AUD]... [--tls-identity ID] [--callers-file FILE]`,
  summary: 'make a caller: a new API key (printed once) and its callers-file entry; added to FILE when given',
  callsTally: false,
  positionals: { min: 1, max: 1, name: 'NAME' },
  options: {
    permission: { type: 'string', multiple: true },
    audience: { type: 'string', multiple: true },
    'tls-identity': { type: 'string' },
    'callers-file': { type: 'string' },
  },
  async run(context) {
    const name = nameOf(context);
    const permissions = (context.values.permission as string[] | undefined) ?? [];
    if (permissions.length === 0) throw usageError(`caller new: give at least one --permission (${PERMISSIONS.join(', ')})`);
    const apiKey = newApiKey();
    const entry: Entry = {
      name,
      permissions,
      ...(context.values.audience === undefined ? {} : { audiences: context.values.audience as string[] }),
      api_key_sha256: [apiKeyHash(apiKey)],
      ...(typeof context.values['tls-identity'] === 'string' ? { tls_identity: context.values['tls-identity'] } : {}),
    };
    // Checked alone first, so a bad name, permission or identity is named as the argument it came from.
    try {
      parseCallers(JSON.stringify({ callers: [entry] }));
    } catch (error) {
      if (error instanceof CallersFileError) throw usageError(`caller new: ${error.message.replace(/^callers\[0\]\.?/, '')}`);
      throw error;
    }
    const path = callersFileOf(context, false);
    if (path !== undefined) {
      const document = readDocument(path, false);
      if (document.callers.some((candidate) => candidate.name === name)) {
        throw new CliError(`${path}: a caller named ${JSON.stringify(name)} exists; to give it a new key, use tally caller roll ${name}`);
      }
      document.callers.push(entry);
      writeDocument(path, document);
    }
    context.note(KEY_NOTE);
    return { name, api_key: apiKey, ...(path === undefined ? { entry } : { callers_file: path, api_key_sha256: entry.api_key_sha256 }) };
  },
};

/**
 * The one way roll and finish-roll change a caller: read its entry from the
 * callers file, let change decide its new key hashes (or refuse), write the
 * file back, then say its note and answer what to print.
 */
function changeKeyHashes(
  context: CommandContext,
  change: (hashes: string[], name: string, path: string) => { hashes: string[]; shown?: Record<string, string>; note?: string },
): Record<string, unknown> {
  const name = nameOf(context);
  const path = callersFileOf(context, true)!;
  const document = readDocument(path, true);
  const entry = findEntry(document, name, path);
  const { hashes, shown, note } = change(entry.api_key_sha256 ?? [], name, path);
  entry.api_key_sha256 = hashes;
  writeDocument(path, document);
  if (note !== undefined) context.note(note);
  return { name, ...shown, callers_file: path, api_key_sha256: hashes };
}

export const rollCaller: Command = {
  words: ['caller', 'roll'],
  usage: 'tally caller roll NAME --callers-file FILE',
  summary: "give a caller a second API key (printed once); both work until finish-roll",
  callsTally: false,
  positionals: { min: 1, max: 1, name: 'NAME' },
  options: { 'callers-file': { type: 'string' } },
  async run(context) {
    return changeKeyHashes(context, (hashes, name, path) => {
      if (hashes.length >= 2) {
        throw new CliError(`${path}: caller ${JSON.stringify(name)} already has two API keys; finish the last roll first: tally caller finish-roll ${name}`);
      }
      const apiKey = newApiKey();
      return {
        hashes: [...hashes, apiKeyHash(apiKey)],
        shown: { api_key: apiKey },
        note: `${KEY_NOTE} Both keys work now; once every client uses the new one: tally caller finish-roll ${name} --callers-file ${path}`,
      };
    });
  },
};

export const finishRoll: Command = {
  words: ['caller', 'finish-roll'],
  usage: 'tally caller finish-roll NAME --callers-file FILE',
  summary: "drop a caller's older API key, keeping the one the last roll made",
  callsTally: false,
  positionals: { min: 1, max: 1, name: 'NAME' },
  options: { 'callers-file': { type: 'string' } },
  async run(context) {
    return changeKeyHashes(context, (hashes, name, path) => {
      if (hashes.length < 2) throw new CliError(`${path}: caller ${JSON.stringify(name)} has ${hashes.length} API key; there is no roll to finish`);
      return { hashes: hashes.slice(-1) };
    });
  },
};
