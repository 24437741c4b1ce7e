// Every Lua script the store runs. Each touches keys of one Cluster slot
// only (see keys.ts), declared in KEYS. Times come from Redis's TIME, so
// every replica judges mark keep times and leases by one clock.

const NOW_MS = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
`;

/**
 * The store's identity (see keys.ts), made when the store is set up: on first
 * use, and again by whichever script first finds it gone (the data was lost).
 * `since` starts the fence of PENDING_REPLICAS. When the sequence is gone too,
 * revocations may have been lost while the tokens they covered live on
 * (records on other Cluster slots): the sequence starts again at a floor that
 * counts as a mark on every scope (READ_MARKS), so every token numbered before
 * it is revoked, failing closed. A store that has a sequence but no identity
 * (made before identities existed) gets no floor. Needs NOW_MS.
 */
const IDENTITY = `
local function storeIdentity(identityKey, sequenceKey, newIdentity)
  local identity = redis.call('HGET', identityKey, 'id')
  if identity then return identity end
  local floor = 0
  if redis.call('EXISTS', sequenceKey) == 0 then
    floor = now * 1000
    redis.call('SET', sequenceKey, floor)
  end
  redis.call('HSET', identityKey, 'id', newIdentity, 'since', now, 'floor', floor)
  return newIdentity
end
`;

/**
 * The next revocation number: one past the last, and never below Redis's
 * time in microseconds-like units (ms × 1000). So numbers never go backwards,
 * even on a store that lost its latest ones (a failover to a replica that was
 * behind): a number taken a millisecond or more after the loss is above
 * every number taken before it, unless more than 1000 were taken in one
 * millisecond. Returns the
 * previous and the next. Needs NOW_MS.
 */
const NEXT_SEQUENCE = `
local function nextSequence(sequenceKey)
  local previous = tonumber(redis.call('GET', sequenceKey) or '0')
  local sequence = math.max(previous + 1, now * 1000)
  redis.call('SET', sequenceKey, sequence)
  return previous, sequence
end
`;

/**
 * KEYS: sequence, marks, mark-expiry, events, identity. ARGV: mark field,
 * keepForMs, events to keep, a new identity (used if the store must be set
 * up). Takes the next revocation number, raises the mark to it,
 * keeps it at least keepForMs without cutting short an earlier promise,
 * drops a few marks past their keep time, and appends the event that
 * replicas apply. Returns the number.
 */
const REVOKE = `${NOW_MS}${IDENTITY}${NEXT_SEQUENCE}
storeIdentity(KEYS[5], KEYS[1], ARGV[4])
local previous, sequence = nextSequence(KEYS[1])
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
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[3], '*', 'sequence', sequence, 'kind', 'mark', 'field', ARGV[1], 'keep', keepUntil - now, 'previous', previous)
return sequence
`;

/**
 * KEYS: marks, mark-expiry, identity. ARGV: mark fields. The highest mark
 * among them still within its keep time, and the store's floor (IDENTITY)
 * unless every field is a key's; 0 if none.
 */
const READ_MARKS = `${NOW_MS}
local highest = 0
-- The floor counts for every scope but 'key' (keys.ts, floorCounts).
for _, field in ipairs(ARGV) do
  if string.sub(field, 1, 4) ~= 'key:' then
    highest = tonumber(redis.call('HGET', KEYS[3], 'floor') or '0')
    break
  end
end
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
 * KEYS: key ring, sequence, events, identity. ARGV: expected version, keys
 * JSON, events to keep, a new identity. Compare-and-set: writes version + 1
 * and the keys only if the version is still the expected one, and tells the
 * replicas. Returns 1 when written, 0 when another writer won.
 */
const WRITE_KEY_RING = `${NOW_MS}${IDENTITY}${NEXT_SEQUENCE}
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if current ~= tonumber(ARGV[1]) then return 0 end
storeIdentity(KEYS[4], KEYS[2], ARGV[4])
redis.call('HSET', KEYS[1], 'version', current + 1, 'keys', ARGV[2])
local previous, sequence = nextSequence(KEYS[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'sequence', sequence, 'kind', 'keys', 'field', '', 'keep', 0, 'previous', previous)
return 1
`;

/** KEYS: key ring, identity. { version or false, keys JSON or false, identity or false }. */
const READ_KEY_RING = `
local ring = redis.call('HMGET', KEYS[1], 'version', 'keys')
return { ring[1], ring[2], redis.call('HGET', KEYS[2], 'id') }
`;

/**
 * KEYS: leases, identity, sequence, events. ARGV: replica id, last applied
 * sequence, lease ms, the identity of the store the view was loaded from,
 * the id of the last event read, a new identity. Takes or renews the
 * replica's lease, recording what it has applied. Returns 1 when the lease
 * was held without a break, 0 when it had lapsed (or never was): then
 * revocations may have returned without this replica, and it must read the
 * stream to its end before it answers from its view again. Grants nothing
 * when the store is not the one the view was built from: -1 when its
 * identity changed (set up again after losing its data), -2 when it lost
 * events the view applied: its sequence is below what the view applied, or
 * the last event the view read is gone while an older one is still there
 * (trimming drops the oldest first, so the newest were lost, as in a
 * failover to a replica that was behind).
 */
const RENEW_LEASE = `${NOW_MS}${IDENTITY}
if storeIdentity(KEYS[2], KEYS[3], ARGV[6]) ~= ARGV[4] then return -1 end
if tonumber(redis.call('GET', KEYS[3]) or '0') < tonumber(ARGV[2]) then return -2 end
if ARGV[5] ~= '0-0' then
  local upTo = redis.call('XREVRANGE', KEYS[4], ARGV[5], '-', 'COUNT', 1)
  if #upTo > 0 and upTo[1][1] ~= ARGV[5] then return -2 end
  if #upTo == 0 and redis.call('XLEN', KEYS[4]) == 0 then return -2 end
end
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
 * KEYS: leases, sequence. ARGV: holder field, applied sequence, lease ms.
 * Takes a lease for a holder of a view outside Tally (keys.ts, holderField),
 * in the same hash as the replicas' leases, so PENDING_REPLICAS waits for it
 * alike. Drops leases that have lapsed, as PENDING_REPLICAS does, so that
 * holders that came and went leave nothing behind even when nothing is
 * revoked. Returns { the sequence, Redis's time in ms } at the grant.
 */
const GRANT_HOLDER_LEASE = `${NOW_MS}
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local leaseEnd = tonumber(string.match(entries[i + 1], ':(%d+)$'))
  if (not leaseEnd) or leaseEnd <= now then redis.call('HDEL', KEYS[1], entries[i]) end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. (now + tonumber(ARGV[3])))
return { redis.call('GET', KEYS[2]) or '0', now }
`;

/**
 * KEYS: leases, events. ARGV: holder field, applied sequence, lease ms.
 * Renews a holder's lease that is still live, recording what it has applied:
 * 1. Not renewed, and dropped: 0, for a lease that lapsed (revocations may
 * have returned without the holder) or that was never granted, and for a
 * holder that has not applied an event appended a whole lease ago: it is
 * not keeping up, or acknowledges without applying, and must not hold every
 * Revoke until it fails. (Stream ids are Redis's time in ms.)
 */
const RENEW_HOLDER_LEASE = `${NOW_MS}
local entry = redis.call('HGET', KEYS[1], ARGV[1])
local leaseEnd = entry and tonumber(string.match(entry, ':(%d+)$'))
local keepingUp = true
local due = redis.call('XREVRANGE', KEYS[2], tostring(now - tonumber(ARGV[3])), '-', 'COUNT', 1)
if #due > 0 then
  local fields = due[1][2]
  for i = 1, #fields, 2 do
    if fields[i] == 'sequence' and tonumber(fields[i + 1]) > tonumber(ARGV[2]) then keepingUp = false end
  end
end
if leaseEnd and leaseEnd > now and keepingUp then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. (now + tonumber(ARGV[3])))
  return 1
end
redis.call('HDEL', KEYS[1], ARGV[1])
return 0
`;

/**
 * KEYS: leases, identity. ARGV: sequence, fence ms. How many replicas hold a
 * live lease but have not applied the event with this sequence yet. Lapsed
 * leases are dropped: their replicas no longer answer from their views.
 * For fence ms after the store was set up (or while it has no identity) one
 * more is counted: a replica may still trust a view of the store as it was
 * before it lost its data, under a lease this store no longer knows of.
 */
const PENDING_REPLICAS = `${NOW_MS}
local pending = 0
local since = redis.call('HGET', KEYS[2], 'since')
if (not since) or now < tonumber(since) + tonumber(ARGV[2]) then pending = 1 end
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
 * KEYS: sequence, marks, mark-expiry, events, identity. ARGV: a new identity.
 * A consistent starting point for a replica's view: the sequence, the id of
 * the last event (every event up to it is reflected in the marks), each live
 * mark with its remaining keep time, the store's identity and its floor:
 * { sequence, lastEventId, { field, mark, remainingMs, ... }, identity, floor }.
 */
const SNAPSHOT = `${NOW_MS}${IDENTITY}
local identity = storeIdentity(KEYS[5], KEYS[1], ARGV[1])
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
return { sequence, lastEventId, marks, identity, redis.call('HGET', KEYS[5], 'floor') or '0' }
`;

/** KEYS: sequence (only to route the call to the node that times marks and leases). The server's TIME. */
const SERVER_TIME = `return redis.call('TIME')`;

/**
 * KEYS: token record. ARGV: record JSON, expiry (ms, a time on the store's
 * clock). Saves the record until then; one whose time has already passed by
 * Redis's clock deletes an older copy instead. SET's own PXAT judges "passed"
 * by a time Redis caches per command, which can trail the clock that stamped
 * the record; TIME does not.
 */
const PUT_TOKEN = `${NOW_MS}
if tonumber(ARGV[2]) <= now then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
return 1
`;

export const SCRIPTS = {
  putToken: { lua: PUT_TOKEN, numberOfKeys: 1 },
  revoke: { lua: REVOKE, numberOfKeys: 5 },
  readMarks: { lua: READ_MARKS, numberOfKeys: 3 },
  writeKeyRing: { lua: WRITE_KEY_RING, numberOfKeys: 4 },
  readKeyRing: { lua: READ_KEY_RING, numberOfKeys: 2 },
  renewLease: { lua: RENEW_LEASE, numberOfKeys: 4 },
  grantHolderLease: { lua: GRANT_HOLDER_LEASE, numberOfKeys: 2 },
  renewHolderLease: { lua: RENEW_HOLDER_LEASE, numberOfKeys: 2 },
  pendingReplicas: { lua: PENDING_REPLICAS, numberOfKeys: 2 },
  snapshot: { lua: SNAPSHOT, numberOfKeys: 5 },
  serverTime: { lua: SERVER_TIME, numberOfKeys: 1 },
} as const;

/** The methods ioredis adds for SCRIPTS. */
export interface ScriptCommands {
  putToken(tokenKey: string, recordJson: string, expiresAtMs: number): Promise<number>;
  revoke(sequenceKey: string, marksKey: string, markExpiryKey: string, eventsKey: string, identityKey: string, field: string, keepForMs: number, eventsToKeep: number, newIdentity: string): Promise<number>;
  readMarks(marksKey: string, markExpiryKey: string, identityKey: string, ...fields: string[]): Promise<number>;
  writeKeyRing(keyRingKey: string, sequenceKey: string, eventsKey: string, identityKey: string, expectedVersion: number, keysJson: string, eventsToKeep: number, newIdentity: string): Promise<number>;
  readKeyRing(keyRingKey: string, identityKey: string): Promise<[string | null, string | null, string | null]>;
  renewLease(
    leasesKey: string, identityKey: string, sequenceKey: string, eventsKey: string,
    replicaId: string, appliedSequence: number, leaseMs: number, knownIdentity: string, lastEventId: string, newIdentity: string,
  ): Promise<number>;
  grantHolderLease(leasesKey: string, sequenceKey: string, holderField: string, appliedSequence: number, leaseMs: number): Promise<[string, number]>;
  renewHolderLease(leasesKey: string, eventsKey: string, holderField: string, appliedSequence: number, leaseMs: number): Promise<number>;
  pendingReplicas(leasesKey: string, identityKey: string, sequence: number, fenceMs: number): Promise<number>;
  snapshot(sequenceKey: string, marksKey: string, markExpiryKey: string, eventsKey: string, identityKey: string, newIdentity: string): Promise<[number, string, string[], string, string]>;
  serverTime(sequenceKey: string): Promise<[string, string]>;
}
