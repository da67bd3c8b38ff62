import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import type { Env } from '../config/env.js'
import { describeTarget, redisTarget } from '../config/redis-mode.js'
import { type Clock, createFleetClock, systemClock } from '../core/clock.js'
import type { TokenStore } from '../core/store.js'
import { createMemoryStore } from '../store/memory.js'

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
    // Bounded and never throws: a Redis that is down must not stop start-up (promise 7), but
    // waiting briefly lets the warm-up take tokens already in Redis (promise 5).
    // Sentinel and Cluster take more steps to connect (ask the sentinels, map the slots): more time.
    await redis.connect(target.mode === 'single' ? undefined : 5000)
    store = redis
    fastify.decorate('fleetClock', fleetClock)
  }
  fastify.decorate('store', store)
  // Closed by the shutdown plugin.
}

export default fp(storePlugin, {
  fastify: '5.x',
  name: 'token-store',
  dependencies: ['@fastify/env', 'broker-config'],
})
