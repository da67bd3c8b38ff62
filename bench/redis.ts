import { findRedis as findRedisAsTestsDo } from '../tools/find-redis.js'
import { onCleanup } from './cleanup.js'

export interface FoundRedis {
  url: string
  how: 'REDIS_URL' | 'testcontainers' | 'redis-server'
}

/** Finds a Redis exactly as the tests do; whatever is started for the bench is stopped on exit. */
export async function findRedis(): Promise<FoundRedis> {
  const found = await findRedisAsTestsDo('The bench')
  onCleanup(found.stop)
  return { url: found.url, how: found.how }
}
