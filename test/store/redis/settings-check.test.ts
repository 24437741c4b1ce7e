// The Redis settings that can lose or evict revocations are found and named,
// at start-up and after a reconnect; a Redis that hides CONFIG is reported
// as not checked.

import { afterEach, describe, expect, it } from 'vitest';
import { createRedisStore, type RedisStore } from '../../../src/store/redis/redis-store.js';
import { riskySettings, type SettingsReport } from '../../../src/store/redis/settings-check.js';
import { eventually } from '../../support/eventually.js';
import { startRedis, type RedisServerHandle } from '../../support/redis-server.js';

describe('riskySettings', () => {
  it.each([
    [{ appendonly: 'yes', appendfsync: 'always', 'maxmemory-policy': 'noeviction' }, []],
    [{ appendonly: 'no', appendfsync: 'always', 'maxmemory-policy': 'noeviction' }, ['appendonly']],
    [{ appendonly: 'yes', appendfsync: 'everysec', 'maxmemory-policy': 'noeviction' }, ['appendfsync']],
    [{ appendonly: 'yes', appendfsync: 'no', 'maxmemory-policy': 'noeviction' }, ['appendfsync']],
    // Without the AOF, appendfsync does not matter: appendonly is what to fix.
    [{ appendonly: 'no', appendfsync: 'everysec', 'maxmemory-policy': 'noeviction' }, ['appendonly']],
    [{ appendonly: 'yes', appendfsync: 'always', 'maxmemory-policy': 'allkeys-lru' }, ['maxmemory-policy']],
    [{ appendonly: 'yes', appendfsync: 'always', 'maxmemory-policy': 'volatile-ttl' }, ['maxmemory-policy']],
  ] as const)('%j is risky in %j', (settings, names) => {
    const found = riskySettings('redis:6379', settings);
    expect(found.map((setting) => setting.setting)).toEqual(names);
    for (const setting of found) {
      expect(setting.value).toBe(settings[setting.setting]);
      expect(setting.risk).toMatch(/revocation|token records/);
    }
  });

  it('says an allkeys policy can un-revoke tokens', () => {
    expect(riskySettings('s', { 'maxmemory-policy': 'allkeys-random' })[0]!.risk).toContain('un-revoke tokens');
  });
});

describe('the Redis store checks the settings of the server it is connected to', () => {
  const servers: RedisServerHandle[] = [];
  const stores: RedisStore[] = [];
  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
    for (const server of servers.splice(0)) await server.kill();
  });

  async function reportsFor(server: RedisServerHandle): Promise<SettingsReport[]> {
    const reports: SettingsReport[] = [];
    stores.push(createRedisStore({ url: server.url, onSettingsChecked: (report) => reports.push(report) }));
    await eventually(async () => expect(reports.length).toBeGreaterThan(0), 5_000);
    return reports;
  }

  it('finds nothing to say on the settings the README asks for', async () => {
    const server = await startRedis({ appendonly: true });
    servers.push(server);
    expect(await reportsFor(server)).toEqual([{ checked: true, risky: [] }]);
  });

  it('names each risky setting with its server and value, and checks again after a reconnect', async () => {
    const server = await startRedis({ appendonly: false, args: ['--maxmemory-policy', 'allkeys-lru'] });
    servers.push(server);
    const reports = await reportsFor(server);
    expect(reports[0]).toEqual({
      checked: true,
      risky: [
        expect.objectContaining({ server: `127.0.0.1:${server.port}`, setting: 'appendonly', value: 'no' }),
        expect.objectContaining({ server: `127.0.0.1:${server.port}`, setting: 'maxmemory-policy', value: 'allkeys-lru' }),
      ],
    });
    await server.restart();
    await eventually(async () => expect(reports).toHaveLength(2), 10_000);
    expect(reports[1]).toEqual(reports[0]);
  });

  it('says it could not check when the server hides CONFIG', async () => {
    const server = await startRedis({ appendonly: true, args: ['--rename-command', 'CONFIG', 'hidden-config'] });
    servers.push(server);
    const [report] = await reportsFor(server);
    expect(report).toMatchObject({ checked: false, server: `127.0.0.1:${server.port}` });
  });
});
