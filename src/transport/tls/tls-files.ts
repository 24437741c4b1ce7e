// The certificate, key and client CA both ports serve TLS with, kept in step
// with their files so certificates rotate (cert-manager, a mounted Secret)
// without a restart. The files are polled like the callers file, because
// mounts are swapped through symlinks that inotify on the old file never sees.
// A new set is used only once the certificate and key match and all three
// parse: a rotation caught halfway (new certificate, old key) keeps the last
// good set serving and is retried at the next change.
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import type { TlsHandshakeObserver } from './tls-handshakes.js';

export interface TlsFilePaths {
  certFile: string;
  keyFile: string;
  /** Set: mutual TLS, client certificates required and verified against it. */
  clientCaFile?: string;
}

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
  /** TALLY_TLS_GROUPS: the key exchange groups accepted; unset, OpenSSL's own list. */
  groups?: string;
}

export interface TlsFiles {
  /** Whether clients must present a certificate the client CA signed. */
  readonly mutual: boolean;
  current(): TlsMaterial;
  /** Told of every new good set, after it is current. */
  onChange(listener: (material: TlsMaterial) => void): void;
  /** Told how every handshake on either port ended (the servers report to it). */
  readonly observeHandshake: TlsHandshakeObserver;
  close(): void;
}

export interface TlsFilesOptions extends TlsFilePaths {
  /** An OpenSSL group list both ports accept (TALLY_TLS_GROUPS); unset, OpenSSL's default. */
  groups?: string;
  pollIntervalMs: number;
  onReload: (files: string[]) => void;
  onError: (error: Error) => void;
  onHandshake?: TlsHandshakeObserver;
}

/** The secure context options for a set; the key is a secret and goes nowhere else. */
export function secureContextOptions(material: TlsMaterial): SecureContextOptions {
  const options: SecureContextOptions = { cert: material.cert, key: material.key };
  if (material.ca !== undefined) options.ca = material.ca;
  // Node's name for OpenSSL's group list (SSL_CTX_set1_groups_list), post-quantum hybrids included.
  if (material.groups !== undefined) options.ecdhCurve = material.groups;
  return options;
}

function read(paths: TlsFilePaths & { groups?: string }): TlsMaterial {
  const material: TlsMaterial = { cert: readFileSync(paths.certFile), key: readFileSync(paths.keyFile) };
  if (paths.clientCaFile !== undefined) material.ca = readFileSync(paths.clientCaFile);
  if (paths.groups !== undefined) material.groups = paths.groups;
  try {
    // Throws for a key that does not belong to the certificate, or PEM that does not parse.
    createSecureContext(secureContextOptions(material));
  } catch (error) {
    // OpenSSL's message names no file and holds no key material.
    throw new Error(`the TLS certificate, key or client CA cannot be used together: ${(error as Error).message}`);
  }
  return material;
}

function same(a: TlsMaterial, b: TlsMaterial): boolean {
  return a.cert.equals(b.cert) && a.key.equals(b.key) && (a.ca === undefined ? b.ca === undefined : b.ca !== undefined && a.ca.equals(b.ca));
}

/** Reads the files once (throwing if they are unusable, so start-up fails) and then follows them. */
export function watchTlsFiles(options: TlsFilesOptions): TlsFiles {
  let material = read(options);
  const listeners: Array<(material: TlsMaterial) => void> = [];
  const paths = [options.certFile, options.keyFile, ...(options.clientCaFile === undefined ? [] : [options.clientCaFile])];
  const reload = () => {
    let next: TlsMaterial;
    try {
      next = read(options);
    } catch (error) {
      options.onError(error as Error);
      return;
    }
    if (same(next, material)) return;
    material = next;
    options.onReload(paths);
    for (const listener of listeners) listener(material);
  };
  for (const path of new Set(paths)) watchFile(path, { interval: options.pollIntervalMs, persistent: false }, reload);
  return {
    mutual: options.clientCaFile !== undefined,
    current: () => material,
    onChange: (listener) => void listeners.push(listener),
    observeHandshake: options.onHandshake ?? (() => {}),
    close: () => {
      for (const path of new Set(paths)) unwatchFile(path, reload);
    },
  };
}
