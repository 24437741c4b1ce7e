// A throwaway PKI made with the openssl command line at test time: a CA, a
// server certificate for 127.0.0.1/localhost, and client certificates named
// by a SPIFFE ID (URI SAN) or by their subject. Nothing is committed; every
// run makes fresh keys in a temporary directory removed when the process exits.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface IssuedCertificate {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
}

export interface TestCa {
  certFile: string;
  cert: Buffer;
  /** A server certificate for 127.0.0.1 and localhost. */
  server(name?: string): IssuedCertificate;
  /** A client certificate with this subject (`/O=Tally Tests/CN=billing`) and, optionally, a SPIFFE ID. */
  client(subject: string, spiffeId?: string): IssuedCertificate;
}

const directories: string[] = [];
process.once('exit', () => {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
});

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

export function createTestCa(commonName = 'Tally Test CA'): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'tally-pki-'));
  directories.push(dir);
  const curve = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(
    ['req', '-x509', ...curve, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', `/CN=${commonName}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    dir,
  );
  let count = 0;
  const issue = (subject: string, extensions: string[]): IssuedCertificate => {
    count += 1;
    const base = `leaf-${count}`;
    openssl(['req', ...curve, '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', subject], dir);
    writeFileSync(join(dir, `${base}.ext`), `${extensions.join('\n')}\n`);
    openssl(
      ['x509', '-req', '-in', `${base}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', `0x${randomBytes(8).toString('hex')}`,
        '-days', '2', '-out', `${base}.crt`, '-extfile', `${base}.ext`],
      dir,
    );
    const certFile = join(dir, `${base}.crt`);
    const keyFile = join(dir, `${base}.key`);
    return { certFile, keyFile, cert: readFileSync(certFile), key: readFileSync(keyFile) };
  };
  return {
    certFile: join(dir, 'ca.crt'),
    cert: readFileSync(join(dir, 'ca.crt')),
    server: (name = 'tally') =>
      issue(`/CN=${name}`, ['basicConstraints=CA:FALSE', 'extendedKeyUsage=serverAuth', 'subjectAltName=IP:127.0.0.1,DNS:localhost']),
    client: (subject, spiffeId) =>
      issue(subject, ['basicConstraints=CA:FALSE', 'extendedKeyUsage=clientAuth', ...(spiffeId === undefined ? [] : [`subjectAltName=URI:${spiffeId}`])]),
  };
}
