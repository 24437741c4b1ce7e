import type { Clock, Store } from '../core/ports.js';
import { createMemoryStore } from './memory/memory-store.js';
import { createRedisStore, type RedisStoreOptions } from './redis/redis-store.js';

export { createMemoryStore } from './memory/memory-store.js';
export type { StoreChange } from './redis/replica-view.js';
export { SETTINGS_README_SECTION, type SettingsReport } from './redis/settings-check.js';

export interface StoreConfig extends Omit<RedisStoreOptions, 'url'> {
  /** Unset or empty: the in-memory store (nothing shared, nothing kept). */
  redisUrl?: string;
  clock?: Clock;
}

export function createStore({ redisUrl, ...options }: StoreConfig): Store {
  if (redisUrl === undefined || redisUrl === '') return createMemoryStore({ clock: options.clock, holderLeaseMs: options.holderLeaseMs });
  return createRedisStore({ ...options, url: redisUrl });
}
