import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import type { Env } from '../config/env.js'
import { ConfigError } from '../config/errors.js'
import { describeTarget, type RedisTarget, redisTarget } from '../config/redis-mode.js'
import { type Clock, createFleetClock, systemClock } from '../core/clock.js'
import type { TokenStore } from '../core/store.js'
import { createMemoryStore } from '../store/memory.js'
import type { Refusal } from '../store/redis-refusal.js'

declare module 'fastify' {
  interface FastifyInstance {
    store: TokenStore
    /** The time every token is judged by: with Redis, this replica's clock set to Redis TIME. */
    fleetClock: Clock
  }
}

export interface StorePluginOptions {
  clock?: Clock
  /** In [0, 1): jitter (Math.random unless a test fixes it). */
  random?: () => number
}

/** Decorates `fastify.store`: Redis when a Redis mode is set, else an in-memory store (one replica). */
const storePlugin: FastifyPluginAsync<StorePluginOptions> = async (fastify, opts) => {
  const config: Env = fastify.config
  const log = fastify.log.child({ component: 'store' })
  const target = redisTarget(config)
  let store: TokenStore
  if (!target) {
    log.warn('REDIS_URL is not set: in-memory token store, run one replica only')
    store = createMemoryStore({ clock: opts.clock })
    fastify.decorate('fleetClock', opts.clock ?? systemClock)
  } else {
    const encryption = fastify.broker.encryption
    if (!encryption) log.warn('TOKEN_ENCRYPTION_KEY is not set: tokens are stored in Redis in plain text')
    const fleetClock = createFleetClock(opts.clock ?? systemClock)
    // Loaded only when used: ioredis is a good share of an in-memory broker's footprint otherwise.
    const { createRedisStore } = await import('../store/redis.js')
    const where = describeTarget(target)
    const redis = createRedisStore({
      endpoints: target,
      describe: where,
      keyPrefix: config.REDIS_KEY_PREFIX,
      encryptionKey: encryption?.current,
      oldEncryptionKeys: encryption?.old,
      log,
      fleetClock,
      random: opts.random ?? Math.random,
    })
    log.info(
      { redis: where, mode: target.mode, encrypted: encryption !== undefined },
      'using redis token store',
    )
    // Bounded and never throws: a Redis that is down must not stop start-up (Redis down is survived),
    // but waiting briefly lets the warm-up take tokens already in Redis (the warm start); both are
    // in docs/fleet.md, What the fleet promises.
    // Sentinel and Cluster take more steps to connect (ask the sentinels, map the slots): more time.
    await redis.connect(target.mode === 'single' ? undefined : 5000)
    // Redis that answers but refuses (a wrong password, an untrusted certificate) is no outage but
    // a setting to fix: starting anyway would leave every replica minting on its own, unnoticed.
    const refusal = await redis.refusal()
    if (refusal) {
      await redis.close()
      throw new ConfigError(refusalMessage(target, refusal))
    }
    store = redis
    fastify.decorate('fleetClock', fleetClock)
  }
  fastify.decorate('store', store)
  // Closed by the shutdown plugin.
}

/** The start-up error for a refusal: which setting to look at, and what Redis or TLS said. */
function refusalMessage(target: RedisTarget, refusal: Refusal): string {
  const said = `(${refusal.detail})`
  switch (refusal.kind) {
    case 'credentials': {
      const where =
        target.mode === 'single'
          ? 'the user and password of REDIS_URL'
          : target.username === undefined
            ? 'REDIS_PASSWORD'
            : 'REDIS_USERNAME and REDIS_PASSWORD'
      return `Redis refused ${where} ${said}`
    }
    case 'sentinel-credentials':
      return `the Redis Sentinels refused REDIS_SENTINEL_PASSWORD ${said}`
    case 'permissions':
      return `the Redis ACL user lacks a permission the broker needs ${said}; it must be allowed the keys and channels under REDIS_KEY_PREFIX`
    case 'untrusted-certificate':
      return `Redis's TLS certificate is not trusted ${said}; if a private CA signed it, name that CA's PEM file in NODE_EXTRA_CA_CERTS`
    case 'certificate-name':
      return `Redis's TLS certificate does not name the host the broker connects to ${said}; connect by a name the certificate holds`
  }
}

export default fp(storePlugin, {
  fastify: '5.x',
  name: 'token-store',
  dependencies: ['@fastify/env', 'broker-config'],
})
