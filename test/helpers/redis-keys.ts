import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'

/** A key prefix of its own for each test, so tests sharing one Redis (and running in parallel) never meet. */
export const uniquePrefix = (): string => `test:${randomBytes(6).toString('hex')}:`

/** A plain client for inspecting Redis from a test. Close it with `quit()`. */
export const redisClient = (url: string): Redis =>
  new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 1 })

/** Every key matching `pattern` (SCAN, not KEYS, so a shared Redis is not blocked). */
export async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500)
    cursor = next
    keys.push(...batch)
  } while (cursor !== '0')
  return [...new Set(keys)]
}

/** Deletes every key under `prefix`. */
export async function deleteKeys(url: string, prefix: string): Promise<void> {
  const redis = redisClient(url)
  try {
    const keys = await scanKeys(redis, `${escapeGlob(prefix)}*`)
    if (keys.length) await redis.del(...keys)
  } finally {
    await redis.quit()
  }
}

/** Escapes SCAN MATCH glob characters, so a prefix matches literally. */
export const escapeGlob = (s: string): string => s.replace(/[*?[\]\\]/g, '\\$&')
