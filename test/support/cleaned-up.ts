// Token services, stores and Redis clients a test file makes on a real
// redis-server, stopped, closed and disconnected once the file is done:
// push each one made, and the afterAll registered here ends them in order.
import type { Redis } from 'ioredis';
import { afterAll } from 'vitest';
import type { Store } from '../../src/core/ports.js';
import type { TokenService } from '../../src/core/token-service.js';

export function cleanedUpAfterAll<S extends Store = Store>(): { services: TokenService[]; stores: S[]; clients: Redis[] } {
  const made = { services: [] as TokenService[], stores: [] as S[], clients: [] as Redis[] };
  afterAll(async () => {
    await Promise.all(made.services.map((service) => service.stop()));
    await Promise.all(made.stores.map((store) => store.close()));
    made.clients.forEach((client) => client.disconnect());
  });
  return made;
}
