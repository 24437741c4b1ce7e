import { createServer } from 'node:net';

/** A loopback port that was free a moment ago; the caller binds it soon after. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('could not read the port the system chose'));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}
