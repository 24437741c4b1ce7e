// Reads the Redis settings that decide whether an acknowledged revocation
// can be lost or evicted (see the durability note in redis-store.ts and the
// README's "Redis settings that keep revocations"), so a deployment that
// would lose them hears so at start-up and after every reconnect rather than
// after an incident. A managed Redis may hide CONFIG: then it says it could
// not check, once per connection.

import { Cluster } from 'ioredis';
import type { RedisClient } from './connect.js';

/** A setting of one Redis server that can lose or evict revocations. */
export interface RiskySetting {
  /** host:port of the server. */
  server: string;
  setting: 'appendonly' | 'appendfsync' | 'maxmemory-policy';
  value: string;
  /** What it can cost, in a user's words. */
  risk: string;
}

export type SettingsReport =
  | { checked: true; risky: RiskySetting[] }
  | { checked: false; server: string; error: Error };

export const SETTINGS_README_SECTION = 'README, "Redis settings that keep revocations"';

type ServerClient = Pick<RedisClient, 'config'> & { options: { host?: string; port?: number }; stream?: { remoteAddress?: string; remotePort?: number } };

/** host:port of the server a connection talks to (through Sentinel, the primary it found). */
function serverName(client: ServerClient): string {
  const host = client.stream?.remoteAddress ?? client.options.host ?? '';
  const port = client.stream?.remotePort ?? client.options.port ?? '';
  return `${host}:${port}`;
}

/** The risky settings among one server's answers to CONFIG GET. */
export function riskySettings(server: string, settings: Readonly<Record<string, string | undefined>>): RiskySetting[] {
  const risky: RiskySetting[] = [];
  const appendonly = settings.appendonly;
  if (appendonly !== undefined && appendonly !== 'yes') {
    risky.push({ server, setting: 'appendonly', value: appendonly, risk: 'a restart loses every revocation since the last snapshot; set appendonly yes' });
  }
  const appendfsync = settings.appendfsync;
  if (appendonly === 'yes' && appendfsync !== undefined && appendfsync !== 'always') {
    risky.push({
      server, setting: 'appendfsync', value: appendfsync,
      risk: 'a crash or power loss can drop revocations that were already acknowledged (up to about a second with everysec); set appendfsync always',
    });
  }
  const policy = settings['maxmemory-policy'];
  if (policy !== undefined && policy !== 'noeviction') {
    risky.push({
      server, setting: 'maxmemory-policy', value: policy,
      risk: policy.startsWith('allkeys-')
        ? 'under memory pressure Redis may evict revocation marks and un-revoke tokens; set maxmemory-policy noeviction'
        : 'under memory pressure Redis may evict token records early; set maxmemory-policy noeviction',
    });
  }
  return risky;
}

async function readSettings(client: ServerClient): Promise<Record<string, string>> {
  const flat = (await client.config('GET', 'appendonly', 'appendfsync', 'maxmemory-policy')) as unknown as string[];
  const settings: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) settings[flat[i]!] = flat[i + 1]!;
  return settings;
}

/** Checks every primary the client writes to (each one of a Cluster). */
export async function checkRedisSettings(client: RedisClient): Promise<SettingsReport> {
  const servers: ServerClient[] = client instanceof Cluster ? client.nodes('master') : [client];
  const risky: RiskySetting[] = [];
  for (const server of servers) {
    const name = serverName(server);
    try {
      risky.push(...riskySettings(name, await readSettings(server)));
    } catch (error) {
      return { checked: false, server: name, error: error as Error };
    }
  }
  return { checked: true, risky };
}
