// Defaults of the Redis store's options that operators can change
// (TALLY_REDIS_COMMAND_TIMEOUT, TALLY_LEASE_MS, TALLY_CLIENT_LEASE_MS): the store applies them and the
// settings table shows them. Apart from redis-store.ts so that reading the
// settings (`--help`, the CLI) does not load the Redis client.

/** How long one Redis command may take before the call fails. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 1_000;
/** How long a replica's lease on its view lasts (see replica-view.ts). */
export const DEFAULT_LEASE_MS = 2_000;
/** How long a client's lease on its local view lasts (TALLY_CLIENT_LEASE_MS): shorter than a replica's. */
export const DEFAULT_HOLDER_LEASE_MS = 1_000;
