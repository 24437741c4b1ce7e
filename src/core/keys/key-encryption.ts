// Private signing keys rest in the store sealed with AES-256-GCM under the
// key-encryption key. The kid is bound in as associated data, so a sealed key
// cannot be moved under another kid without the open failing.
import { createCipheriv, createDecipheriv } from 'node:crypto';
import type { Randomness } from '../ports.js';

const IV_BYTES = 12;
const TAG_BYTES = 16;

export function sealPrivateKey(plaintext: string, kid: string, keyEncryptionKey: Uint8Array, randomness: Randomness): string {
  const iv = randomness.bytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', keyEncryptionKey, iv);
  cipher.setAAD(Buffer.from(kid, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64');
}

/** Throws when the sealed text was altered, belongs to another kid, or was sealed under another key. */
export function openPrivateKey(sealed: string, kid: string, keyEncryptionKey: Uint8Array): string {
  const bytes = Buffer.from(sealed, 'base64');
  if (bytes.length < IV_BYTES + TAG_BYTES) throw new Error('sealed key is too short');
  const decipher = createDecipheriv('aes-256-gcm', keyEncryptionKey, bytes.subarray(0, IV_BYTES));
  decipher.setAAD(Buffer.from(kid, 'utf8'));
  decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
  return Buffer.concat([decipher.update(bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES)), decipher.final()]).toString('utf8');
}
