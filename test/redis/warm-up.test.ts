import { describe, expect, inject, it, onTestFinished } from 'vitest'
import { IMS_CLIENT_ID } from '../helpers/broker.js'
import { askToken, TEST_ENCRYPTION_KEY, useFleet } from '../helpers/fleet.js'
import { deleteKeys } from '../helpers/redis-keys.js'
import { startRedisProxy } from '../helpers/redis-proxy.js'
import { redisStore } from '../helpers/redis-store.js'
import { makeToken } from '../store/contract.js'

const redisUrl = inject('redisUrl')

describe('warm-up with many stored tokens', () => {
  const fleet = useFleet({
    env: () => ({ REDIS_URL: redisUrl, TOKEN_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY }),
    cleanup: (prefix) => deleteKeys(redisUrl, prefix),
  })

  it('takes 1000 stored tokens in a few Redis round trips and mints nothing', async () => {
    const { sim, prefix } = fleet
    const ids = Array.from({ length: 1000 }, (_, i) => `cred-${i}`)
    const credentials = Object.fromEntries(
      ids.map((id) => [
        id,
        {
          type: 'ims',
          environment: 'production',
          baseUrl: sim.url,
          clientId: IMS_CLIENT_ID,
          clientSecret: { env: 'TEST_IMS_SECRET' },
          scopes: ['openid'],
        },
      ]),
    )
    // What a fleet stored before this replica (re)started.
    const writer = redisStore({
      keyPrefix: prefix,
      encryptionKey: Buffer.from(TEST_ENCRYPTION_KEY, 'base64'),
    })
    await writer.connect()
    const stored = new Map(ids.map((id) => [id, makeToken({ expiresAt: Date.now() + 3_600_000 })]))
    await Promise.all([...stored].map(([id, t]) => writer.put(id, t)))
    await writer.close()

    const proxy = await startRedisProxy(redisUrl)
    onTestFinished(() => proxy.close())
    const app = await fleet.replica(
      { REDIS_URL: proxy.url },
      {
        warm: false,
        document: { credentials, clients: { ops: { key: { env: 'TEST_KEY_ALL' }, credentials: ['*'] } } },
      },
    )
    const before = proxy.roundTrips()
    await app.tokens.start()
    const trips = proxy.roundTrips() - before
    expect(sim.mints()).toBe(0)
    expect(trips).toBeLessThanOrEqual(5)
    const ready = await app.inject({ url: '/readyz' })
    expect(ready.statusCode).toBe(200)
    const res = await askToken(app, 'cred-999')
    expect(res.json().access_token).toBe(stored.get('cred-999')?.accessToken)
  })
})
