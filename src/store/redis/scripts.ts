// Every Lua script the store runs. Each takes exactly one key, so each runs
// on one Cluster slot; ioredis sends them by EVALSHA and loads them on NOSCRIPT.

/**
 * KEYS[1] mark key; ARGV[1] revocation number; ARGV[2] keepForMs.
 * Raises the mark to ARGV[1] unless it is already higher (concurrent revokes
 * finish in any order), and keeps it for at least ARGV[2] ms without cutting
 * short the time an earlier revocation asked for. Returns the mark.
 */
const RAISE_MARK = `
local current = redis.call('GET', KEYS[1])
local mark = ARGV[1]
if current and tonumber(current) > tonumber(mark) then mark = current end
local keep = tonumber(ARGV[2])
local remaining = redis.call('PTTL', KEYS[1])
if remaining > keep then keep = remaining end
redis.call('SET', KEYS[1], mark, 'PX', keep)
return mark
`;

/**
 * KEYS[1] key ring hash; ARGV[1] expected version; ARGV[2] keys JSON.
 * Compare-and-set: writes version + 1 and the keys only if the version is
 * still the expected one. Returns 1 when written, 0 when another writer won.
 */
const WRITE_KEY_RING = `
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if current ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'version', current + 1, 'keys', ARGV[2])
return 1
`;

export const SCRIPTS = {
  raiseMark: { lua: RAISE_MARK, numberOfKeys: 1 },
  writeKeyRing: { lua: WRITE_KEY_RING, numberOfKeys: 1 },
} as const;

/** The methods ioredis adds for SCRIPTS. */
export interface ScriptCommands {
  raiseMark(markKey: string, sequence: number, keepForMs: number): Promise<string>;
  writeKeyRing(keyRingKey: string, expectedVersion: number, keysJson: string): Promise<number>;
}
