// Every Lua script the store runs. Each touches keys of one Cluster slot
// only (see keys.ts), declared in KEYS. Times come from Redis's TIME, so
// every replica judges mark keep times and leases by one clock.

const NOW_MS = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
`;

/**
 * KEYS: sequence, marks, mark-expiry, events. ARGV: mark field, keepForMs,
 * events to keep. Takes the next revocation number, raises the mark to it,
 * keeps it at least keepForMs without cutting short an earlier promise,
 * drops a few marks past their keep time, and appends the event that
 * replicas apply. Returns the number.
 */
const REVOKE = `${NOW_MS}
local sequence = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[2], ARGV[1], sequence)
local keepUntil = now + tonumber(ARGV[2])
local promised = redis.call('ZSCORE', KEYS[3], ARGV[1])
if (not promised) or tonumber(promised) < keepUntil then
  redis.call('ZADD', KEYS[3], keepUntil, ARGV[1])
end
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 64)
for _, field in ipairs(lapsed) do
  redis.call('HDEL', KEYS[2], field)
  redis.call('ZREM', KEYS[3], field)
end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[3], '*', 'sequence', sequence, 'kind', 'mark', 'field', ARGV[1], 'keep', keepUntil - now)
return sequence
`;

/** KEYS: marks, mark-expiry. ARGV: mark fields. The highest mark among them still within its keep time (0 if none). */
const READ_MARKS = `${NOW_MS}
local highest = 0
for _, field in ipairs(ARGV) do
  local mark = redis.call('HGET', KEYS[1], field)
  if mark then
    local keepUntil = redis.call('ZSCORE', KEYS[2], field)
    if keepUntil and tonumber(keepUntil) > now and tonumber(mark) > highest then highest = tonumber(mark) end
  end
end
return highest
`;

/**
 * KEYS: key ring, sequence, events. ARGV: expected version, keys JSON, events
 * to keep. Compare-and-set: writes version + 1 and the keys only if the
 * version is still the expected one, and tells the replicas. Returns 1 when
 * written, 0 when another writer won.
 */
const WRITE_KEY_RING = `
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if current ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'version', current + 1, 'keys', ARGV[2])
local sequence = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'sequence', sequence, 'kind', 'keys', 'field', '', 'keep', 0)
return 1
`;

/**
 * KEYS: leases. ARGV: replica id, last applied sequence, lease ms. Takes or
 * renews the replica's lease, recording what it has applied. Returns 1 when
 * the lease was held without a break, 0 when it had lapsed (or never was):
 * then revocations may have returned without this replica, and it must read
 * the stream to its end before it answers from its view again.
 */
const RENEW_LEASE = `${NOW_MS}
local held = 0
local entry = redis.call('HGET', KEYS[1], ARGV[1])
if entry then
  local leaseEnd = tonumber(string.match(entry, ':(%d+)$'))
  if leaseEnd and leaseEnd > now then held = 1 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. (now + tonumber(ARGV[3])))
return held
`;

/**
 * KEYS: leases. ARGV: sequence. How many replicas hold a live lease but have
 * not applied the event with this sequence yet. Lapsed leases are dropped:
 * their replicas no longer answer from their views.
 */
const PENDING_REPLICAS = `${NOW_MS}
local pending = 0
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local applied, leaseEnd = string.match(entries[i + 1], '^(%d+):(%d+)$')
  if (not leaseEnd) or tonumber(leaseEnd) <= now then
    redis.call('HDEL', KEYS[1], entries[i])
  elseif tonumber(applied) < tonumber(ARGV[1]) then
    pending = pending + 1
  end
end
return pending
`;

/**
 * KEYS: sequence, marks, mark-expiry, events. A consistent starting point for
 * a replica's view: the sequence, the id of the last event (every event up
 * to it is reflected in the marks), and each live mark with its remaining
 * keep time: { sequence, lastEventId, { field, mark, remainingMs, ... } }.
 */
const SNAPSHOT = `${NOW_MS}
local sequence = tonumber(redis.call('GET', KEYS[1]) or '0')
local last = redis.call('XREVRANGE', KEYS[4], '+', '-', 'COUNT', 1)
local lastEventId = '0-0'
if #last > 0 then lastEventId = last[1][1] end
local marks = {}
local entries = redis.call('HGETALL', KEYS[2])
for i = 1, #entries, 2 do
  local keepUntil = redis.call('ZSCORE', KEYS[3], entries[i])
  if keepUntil and tonumber(keepUntil) > now then
    marks[#marks + 1] = entries[i]
    marks[#marks + 1] = entries[i + 1]
    marks[#marks + 1] = tostring(tonumber(keepUntil) - now)
  end
end
return { sequence, lastEventId, marks }
`;

/** KEYS: sequence (only to route the call to the node that times marks and leases). The server's TIME. */
const SERVER_TIME = `return redis.call('TIME')`;

export const SCRIPTS = {
  revoke: { lua: REVOKE, numberOfKeys: 4 },
  readMarks: { lua: READ_MARKS, numberOfKeys: 2 },
  writeKeyRing: { lua: WRITE_KEY_RING, numberOfKeys: 3 },
  renewLease: { lua: RENEW_LEASE, numberOfKeys: 1 },
  pendingReplicas: { lua: PENDING_REPLICAS, numberOfKeys: 1 },
  snapshot: { lua: SNAPSHOT, numberOfKeys: 4 },
  serverTime: { lua: SERVER_TIME, numberOfKeys: 1 },
} as const;

/** The methods ioredis adds for SCRIPTS. */
export interface ScriptCommands {
  revoke(sequenceKey: string, marksKey: string, markExpiryKey: string, eventsKey: string, field: string, keepForMs: number, eventsToKeep: number): Promise<number>;
  readMarks(marksKey: string, markExpiryKey: string, ...fields: string[]): Promise<number>;
  writeKeyRing(keyRingKey: string, sequenceKey: string, eventsKey: string, expectedVersion: number, keysJson: string, eventsToKeep: number): Promise<number>;
  renewLease(leasesKey: string, replicaId: string, appliedSequence: number, leaseMs: number): Promise<number>;
  pendingReplicas(leasesKey: string, sequence: number): Promise<number>;
  snapshot(sequenceKey: string, marksKey: string, markExpiryKey: string, eventsKey: string): Promise<[number, string, string[]]>;
  serverTime(sequenceKey: string): Promise<[string, string]>;
}
