// Shared storage adapter for oidc-provider on Redis (after the Redis adapter example in the
// oidc-provider repository). Needed for the cluster variant: the default in-memory adapter is per
// process, so a flow whose requests land on different workers would fail.
// Every model is stored as a hash {payload, consumed?} so that consume() works for any of them.
import Redis from 'ioredis';

const client = new Redis(process.env.OIDC_REDIS_URL || 'redis://127.0.0.1:6379', { keyPrefix: 'oidc:' });

const grantable = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);
const grantKeyFor = (id) => `grant:${id}`;
const userCodeKeyFor = (userCode) => `userCode:${userCode}`;
const uidKeyFor = (uid) => `uid:${uid}`;

export default class RedisAdapter {
  constructor(name) {
    this.name = name;
  }

  key(id) {
    return `${this.name}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    const multi = client.multi();
    multi.del(key);
    multi.hset(key, { payload: JSON.stringify(payload) });
    if (expiresIn) multi.expire(key, expiresIn);
    if (grantable.has(this.name) && payload.grantId) {
      const grantKey = grantKeyFor(payload.grantId);
      multi.rpush(grantKey, key);
      if (expiresIn) {
        multi.expire(grantKey, expiresIn, 'NX'); // first token of the grant
        multi.expire(grantKey, expiresIn, 'GT'); // a longer-lived one extends it
      }
    }
    if (payload.userCode) {
      multi.set(userCodeKeyFor(payload.userCode), id);
      if (expiresIn) multi.expire(userCodeKeyFor(payload.userCode), expiresIn);
    }
    if (payload.uid) {
      multi.set(uidKeyFor(payload.uid), id);
      if (expiresIn) multi.expire(uidKeyFor(payload.uid), expiresIn);
    }
    await multi.exec();
  }

  async find(id) {
    if (!id) return undefined;
    const data = await client.hgetall(this.key(id));
    if (!data || !data.payload) return undefined;
    const { payload, ...rest } = data;
    const out = JSON.parse(payload);
    if (rest.consumed) out.consumed = Number(rest.consumed);
    return out;
  }

  async findByUid(uid) {
    return this.find(await client.get(uidKeyFor(uid)));
  }

  async findByUserCode(userCode) {
    return this.find(await client.get(userCodeKeyFor(userCode)));
  }

  async destroy(id) {
    await client.del(this.key(id));
  }

  async revokeByGrantId(grantId) {
    const tokens = await client.lrange(grantKeyFor(grantId), 0, -1);
    const multi = client.multi();
    tokens.forEach((token) => multi.del(token)); // stored unprefixed; ioredis adds keyPrefix
    multi.del(grantKeyFor(grantId));
    await multi.exec();
  }

  async consume(id) {
    await client.hset(this.key(id), 'consumed', Math.floor(Date.now() / 1000));
  }
}
