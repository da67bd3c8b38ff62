import { afterEach, describe, expect, inject, it, onTestFinished } from 'vitest'
import type { Simulator } from '../../src/simulator/server.js'
import { auth, buildBroker, IMS_CLIENT_ID, SECRETS, startSimulator } from '../helpers/broker.js'
import { deleteKeys, uniquePrefix } from '../helpers/redis-keys.js'
import { startRedisProxy } from '../helpers/redis-proxy.js'
import { redisStore } from '../helpers/redis-store.js'
import { makeToken } from '../store/contract.js'

const redisUrl = inject('redisUrl')
const KEY = 'ZGVtby1vbmx5LWtleS1ub3QtZm9yLXByb2R1Y3Rpb24=' // base64 of 32 bytes, tests only

describe('warm-up with many stored tokens', () => {
  let sim: Simulator
  afterEach(async () => {
    await sim?.close()
  })

  it('takes 1000 stored tokens in a few Redis round trips and mints nothing', async () => {
    sim = await startSimulator()
    const prefix = uniquePrefix()
    onTestFinished(() => deleteKeys(redisUrl, prefix))
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
    const writer = redisStore({ keyPrefix: prefix, encryptionKey: Buffer.from(KEY, 'base64') })
    await writer.connect()
    const stored = new Map(ids.map((id) => [id, makeToken({ expiresAt: Date.now() + 3_600_000 })]))
    await Promise.all([...stored].map(([id, t]) => writer.put(id, t)))
    await writer.close()

    const proxy = await startRedisProxy(redisUrl)
    onTestFinished(() => proxy.close())
    const app = await buildBroker({
      simUrl: sim.url,
      warm: false,
      document: { credentials, clients: { ops: { key: { env: 'TEST_KEY_ALL' }, credentials: ['*'] } } },
      env: { REDIS_URL: proxy.url, REDIS_KEY_PREFIX: prefix, TOKEN_ENCRYPTION_KEY: KEY },
    })
    onTestFinished(() => app.close())
    const before = proxy.roundTrips()
    await app.tokens.start()
    const trips = proxy.roundTrips() - before
    expect(sim.mints()).toBe(0)
    expect(trips).toBeLessThanOrEqual(5)
    const ready = await app.inject({ url: '/readyz' })
    expect(ready.statusCode).toBe(200)
    const res = await app.inject({ url: '/v1/tokens/cred-999', headers: auth(SECRETS.keyAll) })
    expect(res.json().access_token).toBe(stored.get('cred-999')?.accessToken)
  })
})
