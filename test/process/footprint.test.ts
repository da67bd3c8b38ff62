// What a broker process loads, and what it leaves alone: adapters that its configuration does not use
// are never loaded (docs/performance.md, Footprint). Each case runs the real process under module
// hooks that record every module it loads (helpers/loaded-modules.ts), serves a token, and stops.
import { describe, expect, inject, it, onTestFinished } from 'vitest'
import { modulesLoaded } from '../helpers/loaded-modules.js'
import { deleteKeys, uniquePrefix } from '../helpers/redis-keys.js'
import { useSimulatorConfig } from '../helpers/simulator-config.js'

const redisUrl = inject('redisUrl')

const shared = useSimulatorConfig()

const redisCode = (urls: string[]) =>
  urls.filter((u) => u.includes('/node_modules/ioredis/') || /\/src\/store\/redis[^/]*\.ts$/.test(u))
/** undici's index and what only it loads: fetch, WebSocket, EventSource, caches, cookies, mocks. */
const undiciBeyondTheParts = (urls: string[]) =>
  urls.filter((u) => /\/node_modules\/undici\/(index\.js$|lib\/(web|mock|cache)\/)/.test(u))

describe('footprint: adapters load only when configured', () => {
  it('without REDIS_URL: the in-memory store, no ioredis; undici by its parts, never its index', async () => {
    const loaded = await modulesLoaded(shared.configPath)
    // The recorder sees both kinds of module: the broker's own (ES) and undici's (CommonJS, required
    // from one another), so an empty list below means "not loaded", not "not seen".
    expect(loaded.some((u) => u.endsWith('/src/store/memory.ts'))).toBe(true)
    expect(loaded.some((u) => u.endsWith('/node_modules/undici/lib/dispatcher/client-h1.js'))).toBe(true)
    expect(redisCode(loaded)).toEqual([])
    expect(undiciBeyondTheParts(loaded)).toEqual([])
  })

  it('with REDIS_URL: the Redis store and ioredis are loaded', async () => {
    const prefix = uniquePrefix()
    onTestFinished(() => deleteKeys(redisUrl, prefix))
    const loaded = await modulesLoaded(shared.configPath, { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: prefix })
    expect(loaded.some((u) => u.endsWith('/src/store/redis.ts'))).toBe(true)
    expect(loaded.some((u) => u.includes('/node_modules/ioredis/built/'))).toBe(true)
    expect(undiciBeyondTheParts(loaded)).toEqual([])
  })
})
