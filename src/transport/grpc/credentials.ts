// grpc-js server credentials that follow the TLS files: grpc-js calls
// setSecureContext on its HTTP/2 server whenever credentials report new
// options, so a rotated certificate is served on the next handshake. Built on
// ServerCredentials' own update hook rather than grpc-js's experimental
// certificate providers, so that both ports share one watcher and one rule
// for when a new set is good enough to use.
import * as grpc from '@grpc/grpc-js';
import { secureContextOptions, type TlsFiles } from '../tls/tls-files.js';

class ReloadingServerCredentials extends grpc.ServerCredentials {
  constructor(files: TlsFiles) {
    super(
      // With a client CA the handshake itself refuses a client without a
      // certificate the CA signed: no call ever starts for it.
      files.mutual ? { requestCert: true, rejectUnauthorized: true } : { requestCert: false },
      secureContextOptions(files.current()),
    );
    files.onChange((material) => this.updateSecureContextOptions(secureContextOptions(material)));
  }

  override _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

export function createGrpcServerCredentials(files: TlsFiles | undefined): grpc.ServerCredentials {
  return files === undefined ? grpc.ServerCredentials.createInsecure() : new ReloadingServerCredentials(files);
}
