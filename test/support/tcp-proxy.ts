// A TCP proxy in front of a server, to cut one client off from it while
// others keep their connections: pause() stalls every byte both ways (a
// partition: connections stay open, nothing arrives), cut() resets them and
// refuses new ones (the server looks gone), resume() heals either.
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  /** 127.0.0.1 port the proxy listens on. */
  port: number;
  pause(): void;
  cut(): void;
  resume(): void;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket;
  /** Bytes held back while paused, in arrival order, with where they go. */
  held: Array<[Socket, Buffer]>;
}

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let mode: 'open' | 'paused' | 'cut' = 'open';

  // Forwarded by hand rather than with pipe(): pipe resumes a paused source
  // when the other side drains, which would quietly end a stall.
  const forward = (pair: Pair, to: Socket) => (chunk: Buffer) => {
    if (mode === 'paused') pair.held.push([to, chunk]);
    else to.write(chunk);
  };

  const server: Server = createServer((client) => {
    if (mode === 'cut') {
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, targetHost);
    const pair: Pair = { client, upstream, held: [] };
    pairs.add(pair);
    client.on('data', forward(pair, upstream));
    upstream.on('data', forward(pair, client));
    const forget = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', forget).on('close', forget);
    upstream.on('error', forget).on('close', forget);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;

  return {
    port,
    pause() {
      mode = 'paused';
    },
    cut() {
      mode = 'cut';
      for (const { client, upstream } of pairs) {
        client.resetAndDestroy();
        upstream.destroy();
      }
      pairs.clear();
    },
    resume() {
      mode = 'open';
      for (const pair of pairs) {
        for (const [to, chunk] of pair.held.splice(0)) to.write(chunk);
      }
    },
    async close() {
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
