import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import type { Env } from '../config/env.js'
import type { Clock } from '../core/clock.js'
import type { TokenStore } from '../core/store.js'
import { parseEncryptionKey, parseOldKeys } from '../store/crypto.js'
import { createMemoryStore } from '../store/memory.js'

declare module 'fastify' {
  interface FastifyInstance {
    store: TokenStore
  }
}

export interface StorePluginOptions {
  clock?: Clock
}

/** Decorates `fastify.store`: Redis when REDIS_URL is set, else an in-memory store (one replica). */
const storePlugin: FastifyPluginAsync<StorePluginOptions> = async (fastify, opts) => {
  const config: Pick<
    Env,
    'REDIS_URL' | 'REDIS_KEY_PREFIX' | 'TOKEN_ENCRYPTION_KEY' | 'TOKEN_ENCRYPTION_OLD_KEYS'
  > = fastify.config
  const log = fastify.log.child({ component: 'store' })
  let store: TokenStore
  if (!config.REDIS_URL) {
    log.warn('REDIS_URL is not set: in-memory token store, run one replica only')
    store = createMemoryStore({ clock: opts.clock })
  } else {
    let encryptionKey: Buffer | undefined
    if (config.TOKEN_ENCRYPTION_KEY) {
      // Already validated with the rest of the configuration (broker-config).
      encryptionKey = parseEncryptionKey(config.TOKEN_ENCRYPTION_KEY)
    } else {
      log.warn('TOKEN_ENCRYPTION_KEY is not set: tokens are stored in Redis in plain text')
    }
    // Loaded only when used: ioredis is a good share of an in-memory broker's footprint otherwise.
    const { createRedisStore, redactUrl } = await import('../store/redis.js')
    const redis = createRedisStore({
      url: config.REDIS_URL,
      keyPrefix: config.REDIS_KEY_PREFIX,
      encryptionKey,
      oldEncryptionKeys: config.TOKEN_ENCRYPTION_OLD_KEYS
        ? parseOldKeys(config.TOKEN_ENCRYPTION_OLD_KEYS)
        : [],
      log,
      clock: opts.clock,
    })
    log.info({ redis: redactUrl(config.REDIS_URL), encrypted: !!encryptionKey }, 'using redis token store')
    // Bounded and never throws: a Redis that is down must not stop start-up (promise 7), but
    // waiting briefly lets the warm-up take tokens already in Redis (promise 5).
    await redis.connect()
    store = redis
  }
  fastify.decorate('store', store)
  // Closed by the shutdown plugin.
}

export default fp(storePlugin, {
  fastify: '5.x',
  name: 'token-store',
  dependencies: ['@fastify/env'],
})
