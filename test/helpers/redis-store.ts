import { inject, onTestFinished } from 'vitest'
import { createRedisStore, type RedisStoreOptions, type RedisTokenStore } from '../../src/store/redis.js'
import { captureLog } from './capture-log.js'
import { uniquePrefix } from './redis-keys.js'

/**
 * A Redis store as a test makes one: on the tests' Redis unless `url` or `endpoints` name another,
 * under a prefix of its own unless `keyPrefix` is given, logging to a capture; closed when the test ends.
 */
export function redisStore(opts: Partial<RedisStoreOptions> = {}): RedisTokenStore {
  const s = createRedisStore({
    ...(opts.endpoints ? {} : { url: inject('redisUrl') }),
    keyPrefix: uniquePrefix(),
    log: captureLog(),
    random: Math.random,
    ...opts,
  })
  onTestFinished(() => s.close())
  return s
}
