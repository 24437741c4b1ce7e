// A Redis adapter for node-oidc-provider, following its adapter interface and the
// shape of its own Redis example: one JSON value per model instance under
// `<model>:<id>`, a list per grant so revokeByGrantId can find its tokens, and
// hashes for the models that are consumed once. Every key carries a prefix so the
// peer's data stays apart from Tally's on the shared Redis.
import type { Redis } from 'ioredis';
import type { Adapter, AdapterPayload } from 'oidc-provider';

const keyPrefix = 'oidc-provider:';

const grantable = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);
// Consumed in place (a `consumed` field set once), so kept as a hash beside the payload.
const consumable = new Set(['AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);

const grantKey = (grantId: string): string => `${keyPrefix}grant:${grantId}`;
const userCodeKey = (userCode: string): string => `${keyPrefix}userCode:${userCode}`;
const uidKey = (uid: string): string => `${keyPrefix}uid:${uid}`;

/** oidc-provider constructs one adapter per model name; they share one connection. */
export function createRedisAdapterClass(client: Redis): new (model: string) => Adapter {
  return class RedisAdapter implements Adapter {
    readonly #model: string;

    constructor(model: string) {
      this.#model = model;
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      const key = this.#key(id);
      const transaction = client.multi();
      if (consumable.has(this.#model)) transaction.hset(key, { payload: JSON.stringify(payload) });
      else transaction.set(key, JSON.stringify(payload));
      if (expiresIn > 0) transaction.expire(key, expiresIn);
      if (grantable.has(this.#model) && payload.grantId !== undefined) {
        const grant = grantKey(payload.grantId);
        transaction.rpush(grant, key);
        // A grant lives as long as its longest-lived token.
        const ttl = await client.ttl(grant);
        if (expiresIn > ttl) transaction.expire(grant, expiresIn);
      }
      if (payload.userCode !== undefined) {
        transaction.set(userCodeKey(payload.userCode), id);
        if (expiresIn > 0) transaction.expire(userCodeKey(payload.userCode), expiresIn);
      }
      if (payload.uid !== undefined) {
        transaction.set(uidKey(payload.uid), id);
        if (expiresIn > 0) transaction.expire(uidKey(payload.uid), expiresIn);
      }
      await transaction.exec();
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      const key = this.#key(id);
      if (!consumable.has(this.#model)) {
        const value = await client.get(key);
        return value === null ? undefined : (JSON.parse(value) as AdapterPayload);
      }
      const { payload, consumed } = await client.hgetall(key);
      if (payload === undefined) return undefined;
      return { ...(JSON.parse(payload) as AdapterPayload), ...(consumed === undefined ? {} : { consumed: Number(consumed) }) };
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      const id = await client.get(uidKey(uid));
      return id === null ? undefined : this.find(id);
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      const id = await client.get(userCodeKey(userCode));
      return id === null ? undefined : this.find(id);
    }

    async consume(id: string): Promise<void> {
      await client.hset(this.#key(id), 'consumed', Math.floor(Date.now() / 1_000));
    }

    async destroy(id: string): Promise<void> {
      await client.del(this.#key(id));
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      const tokens = await client.lrange(grantKey(grantId), 0, -1);
      await client.del(...tokens, grantKey(grantId));
    }

    #key(id: string): string {
      return `${keyPrefix}${this.#model}:${id}`;
    }
  };
}
