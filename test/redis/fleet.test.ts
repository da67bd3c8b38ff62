import type { FastifyInstance } from 'fastify'
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest'
import type { Simulator } from '../../src/simulator/server.js'
import { auth, buildBroker, EQP_APP_ID, IMS_CLIENT_ID, SECRETS, startSimulator } from '../helpers/broker.js'
import { deleteKeys, escapeGlob, redisClient, scanKeys, uniquePrefix } from '../helpers/redis-keys.js'
import { startRedisProxy } from '../helpers/redis-proxy.js'
import { eventually } from '../store/contract.js'

const redisUrl = inject('redisUrl')
const KEY = 'ZGVtby1vbmx5LWtleS1ub3QtZm9yLXByb2R1Y3Rpb24=' // base64 of 32 bytes, tests only

/** Three replicas of the real app, sharing one Redis under a prefix of this test's own. */
describe('a fleet of three replicas on one Redis', () => {
  let sim: Simulator
  let prefix: string
  let fleet: FastifyInstance[] = []

  const replica = (env: Record<string, string> = {}, warm = true) =>
    buildBroker({
      simUrl: sim.url,
      warm,
      env: { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: prefix, TOKEN_ENCRYPTION_KEY: KEY, ...env },
    })
  const startFleet = async (env: Record<string, string> = {}) => {
    // Built without warming, then warmed together: a concurrent cold start.
    fleet = await Promise.all([replica(env, false), replica(env, false), replica(env, false)])
    await Promise.all(fleet.map((app) => app.tokens.start()))
  }
  const tokenOf = async (app: FastifyInstance, id = 'adobe-ims') => {
    const res = await app.inject({ url: `/v1/tokens/${id}`, headers: auth(SECRETS.keyAll) })
    expect(res.statusCode).toBe(200)
    return res.json().access_token as string
  }
  const refresh = (app: FastifyInstance, rejected?: string, id = 'adobe-ims') =>
    app.inject({
      method: 'POST',
      url: `/v1/tokens/${id}/refresh`,
      headers: { ...auth(SECRETS.keyAll), 'content-type': 'application/json' },
      payload: rejected === undefined ? '' : { rejected_token: rejected },
    })

  beforeEach(async () => {
    sim = await startSimulator()
    prefix = uniquePrefix()
  })
  afterEach(async () => {
    await Promise.all(fleet.map((app) => app.close()))
    fleet = []
    await sim.close()
    await deleteKeys(redisUrl, prefix)
  })

  it('mints once per credential on a concurrent cold start, and every replica serves that token', async () => {
    await startFleet()
    expect(sim.mints(IMS_CLIENT_ID)).toBe(1)
    expect(sim.mints(EQP_APP_ID)).toBe(1)
    const tokens = await Promise.all(fleet.map((app) => tokenOf(app)))
    expect(new Set(tokens).size).toBe(1)
    const eqp = await Promise.all(fleet.map((app) => tokenOf(app, 'marketplace')))
    expect(new Set(eqp).size).toBe(1)
  })

  it('turns 300 concurrent refreshes naming one rejected token into one mint and one new token for all', async () => {
    await startFleet()
    const rejected = await tokenOf(fleet[0]!)
    const answers = await Promise.all(Array.from({ length: 300 }, (_, i) => refresh(fleet[i % 3]!, rejected)))
    expect(answers.every((r) => r.statusCode === 200)).toBe(true)
    const issued = new Set(answers.map((r) => r.json().access_token as string))
    expect(issued.size).toBe(1)
    expect(issued.has(rejected)).toBe(false)
    expect(sim.mints(IMS_CLIENT_ID)).toBe(2) // the cold start, then this one
  })

  it('serves a token forced on one replica from the others within 500 ms, without asking them', async () => {
    await startFleet()
    const old = await tokenOf(fleet[1]!)
    const forced = (await refresh(fleet[0]!, old)).json().access_token as string
    const started = Date.now()
    await eventually(async () => {
      expect(await tokenOf(fleet[1]!)).toBe(forced)
      expect(await tokenOf(fleet[2]!)).toBe(forced)
    }, 500)
    expect(Date.now() - started).toBeLessThan(500)
    expect(sim.mints(IMS_CLIENT_ID)).toBe(2)
  })

  it('keeps the refresh debounce fleet-wide: a refresh within 10 s of a mint anywhere returns that token', async () => {
    await startFleet()
    const first = (await refresh(fleet[0]!, await tokenOf(fleet[0]!))).json().access_token as string
    await eventually(async () => expect(await tokenOf(fleet[2]!)).toBe(first), 500)
    const again = (await refresh(fleet[2]!)).json().access_token as string
    expect(again).toBe(first)
    expect(sim.mints(IMS_CLIENT_ID)).toBe(2)
  })

  it('lets a restarted replica take the stored tokens and mint nothing', async () => {
    await startFleet()
    const before = await tokenOf(fleet[0]!)
    await fleet[0]!.close()
    fleet[0] = await replica()
    expect(await tokenOf(fleet[0])).toBe(before)
    expect(sim.mints()).toBe(2)
  })

  it('refreshes in the background once for the whole fleet', async () => {
    // 6 s tokens with a 0.5 margin: due 1.5 to 3 s after minting (by the spread), less up to 0.3 s
    // of each replica's jitter; the token that replaces it is due no sooner than 1.2 s after that.
    sim.behave(IMS_CLIENT_ID, { expiresIn: 6 })
    await startFleet({ REFRESH_MARGIN: '0.5' })
    const first = await tokenOf(fleet[0]!)
    const due = Math.min(...fleet.map((app) => app.tokens.status('adobe-ims').nextRefreshAt!))
    await new Promise((resolve) => setTimeout(resolve, due - Date.now() + 700))
    expect(sim.mints(IMS_CLIENT_ID)).toBe(2)
    const tokens = await Promise.all(fleet.map((app) => tokenOf(app)))
    expect(new Set(tokens).size).toBe(1)
    expect(tokens[0]).not.toBe(first)
  })

  it('rests the whole fleet after Adobe refuses the secret: one upstream call, however many replicas ask', async () => {
    await startFleet()
    const current = await tokenOf(fleet[0]!)
    sim.behave(IMS_CLIENT_ID, { mode: 'reject' })
    const before = sim.mints(IMS_CLIENT_ID)
    const answers = []
    for (let round = 0; round < 5; round++) {
      answers.push(...(await Promise.all(fleet.map((app) => refresh(app, current)))))
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    expect(answers.map((r) => r.json().code)).toEqual(Array(15).fill('UPSTREAM_REJECTED'))
    expect(sim.mints(IMS_CLIENT_ID) - before).toBe(1)
    // The held token is still served to callers whose need it meets.
    expect(await tokenOf(fleet[2]!)).toBe(current)
  })

  it('overtakes a lock holder that died mid-mint once its lock expires', async () => {
    await startFleet()
    const old = await tokenOf(fleet[0]!)
    // A replica that took the lock and died: its lock outlives it by its TTL, then expires.
    const redis = redisClient(redisUrl)
    await redis.set(`${prefix}{adobe-ims}:lock`, 'a-dead-replica', 'PX', 1_500)
    await redis.quit()
    const started = Date.now()
    const res = await refresh(fleet[1]!, old)
    expect(res.statusCode).toBe(200)
    expect(res.json().access_token).not.toBe(old)
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_200)
    expect(sim.mints(IMS_CLIENT_ID)).toBe(2)
  })

  it('never lets an older token replace a newer one in Redis (the fence)', async () => {
    await startFleet()
    const old = await tokenOf(fleet[0]!)
    const newer = (await refresh(fleet[0]!, old)).json().access_token as string
    // The first replica re-announces what it holds: the stale write must not win.
    const stale = await fleet[1]!.store.get('adobe-ims')
    expect(stale?.accessToken).toBe(newer)
    const older = { ...stale!, accessToken: 'an-older-token', mintedAt: stale!.mintedAt - 60_000 }
    expect(await fleet[2]!.store.put('adobe-ims', older)).toBe(false)
    expect((await fleet[1]!.store.get('adobe-ims'))?.accessToken).toBe(newer)
    expect(await tokenOf(fleet[2]!)).toBe(newer)
  })

  it('keeps no token in Redis in plain text', async () => {
    await startFleet()
    const tokens = [await tokenOf(fleet[0]!), await tokenOf(fleet[0]!, 'marketplace')]
    const redis = redisClient(redisUrl)
    try {
      const keys = await scanKeys(redis, `${escapeGlob(prefix)}*`)
      expect(keys.sort()).toEqual([`${prefix}{adobe-ims}:token`, `${prefix}{marketplace}:token`])
      for (const key of keys) {
        const dump = JSON.stringify(await redis.hgetall(key))
        for (const token of tokens) expect(dump).not.toContain(token)
      }
    } finally {
      await redis.quit()
    }
  })
})

describe('a replica while Redis is down', () => {
  it('keeps answering, mints without the lock when it must, and writes again once Redis is back', async () => {
    const sim = await startSimulator()
    const prefix = uniquePrefix()
    const proxy = await startRedisProxy(redisUrl)
    const app = await buildBroker({
      simUrl: sim.url,
      env: { REDIS_URL: proxy.url, REDIS_KEY_PREFIX: prefix, TOKEN_ENCRYPTION_KEY: KEY },
    })
    const redis = redisClient(redisUrl)
    try {
      const get = () => app.inject({ url: '/v1/tokens/adobe-ims', headers: auth(SECRETS.keyAll) })
      const before = (await get()).json().access_token as string

      await proxy.stop()
      await eventually(async () =>
        expect((await app.inject({ url: '/readyz' })).json().store.state).toBe('down'),
      )
      const during = await get()
      expect(during.statusCode).toBe(200)
      expect(during.json().access_token).toBe(before)
      const started = Date.now()
      const minted = await app.inject({
        method: 'POST',
        url: '/v1/tokens/adobe-ims/refresh',
        headers: auth(SECRETS.keyAll),
        payload: { rejected_token: before },
      })
      expect(minted.statusCode).toBe(200)
      expect(Date.now() - started).toBeLessThan(3_000) // bounded: no wait on a dead Redis
      const fresh = minted.json().access_token as string
      expect(fresh).not.toBe(before)
      const ready = await app.inject({ url: '/readyz' })
      expect(ready.statusCode).toBe(200)
      expect((await app.inject({ url: '/metrics' })).body).toContain('token_broker_store_up{kind="redis"} 0')

      await proxy.start()
      // The token minted while Redis was away reaches Redis once it is back.
      const fromRedis = async () => (await app.store.get('adobe-ims'))?.accessToken
      await eventually(async () => expect(await fromRedis()).toBe(fresh), 5_000)
      expect((await app.inject({ url: '/readyz' })).json().store.state).toBe('ok')
      expect(sim.mints(IMS_CLIENT_ID)).toBe(2)
    } finally {
      await redis.quit()
      await app.close()
      await proxy.close()
      await sim.close()
      await deleteKeys(redisUrl, prefix)
    }
  })
})
