import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { startRedis, testRedisUrl, type RedisServerHandle } from './redis-server.js';

const started: RedisServerHandle[] = [];
const clients: Redis[] = [];

function connect(url: string, extra: { commandTimeout?: number } = {}): Redis {
  const client = new Redis(url, { maxRetriesPerRequest: 1, ...extra });
  client.on('error', () => {});
  clients.push(client);
  return client;
}

afterEach(async () => {
  for (const client of clients.splice(0)) client.disconnect();
  for (const server of started.splice(0)) await server.kill();
});

describe('redis-server launcher', () => {
  it('starts a private server on a loopback port other than 6379 that answers PING', async () => {
    const server = await startRedis();
    started.push(server);
    expect(server.port).not.toBe(6379);
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
    expect(await connect(server.url).ping()).toBe('PONG');
  });

  it('brings AOF data back after restart on the same port and directory', async () => {
    const server = await startRedis({ appendonly: true });
    started.push(server);
    const firstPid = server.pid;
    await connect(server.url).set('kept', 'yes');
    await server.restart();
    expect(server.pid).not.toBe(firstPid);
    expect(await connect(server.url).get('kept')).toBe('yes');
  });

  it('brings AOF data back after a SIGKILL crash and a restart', async () => {
    const server = await startRedis({ appendonly: true });
    started.push(server);
    await connect(server.url).set('kept', 'after-crash');
    await server.kill();
    await server.restart();
    expect(await connect(server.url).get('kept')).toBe('after-crash');
  });

  it('a paused server answers nothing until resumed', async () => {
    const server = await startRedis();
    started.push(server);
    const client = connect(server.url, { commandTimeout: 200 });
    expect(await client.ping()).toBe('PONG');
    server.pause();
    await expect(client.ping()).rejects.toThrow(/timed out/i);
    server.resume();
    expect(await client.ping()).toBe('PONG');
  });

  it('stop() ends the process so the port refuses connections', async () => {
    const server = await startRedis();
    started.push(server);
    await server.stop();
    const client = new Redis(server.url, { lazyConnect: true, retryStrategy: () => null });
    client.on('error', () => {});
    await expect(client.connect()).rejects.toThrow();
    client.disconnect();
  });

  it('passes extra arguments through to redis-server', async () => {
    const server = await startRedis({ args: ['--maxmemory', '12mb'] });
    started.push(server);
    const reply = await connect(server.url).config('GET', 'maxmemory');
    expect(reply).toEqual(['maxmemory', String(12 * 1024 * 1024)]);
  });

  it('testRedisUrl() hands out one working server per test process', async () => {
    const first = await testRedisUrl();
    expect(await testRedisUrl()).toBe(first);
    expect(await connect(first).ping()).toBe('PONG');
  });
});
