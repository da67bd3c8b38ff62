import { describe, expect, inject, it, onTestFinished } from 'vitest'
import { EQP_APP_ID, IMS_CLIENT_ID } from '../helpers/broker.js'
import { refresh, TEST_ENCRYPTION_KEY, tokenOf, useFleet } from '../helpers/fleet.js'
import { deleteKeys, escapeGlob, redisClient, scanKeys } from '../helpers/redis-keys.js'
import { startRedisProxy } from '../helpers/redis-proxy.js'
import { eventually } from '../store/contract.js'

const redisUrl = inject('redisUrl')
/** Replicas of the real app sharing one Redis, each test under a prefix of its own. */
const fleet = useFleet({
  env: () => ({ REDIS_URL: redisUrl, TOKEN_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY }),
  cleanup: (prefix) => deleteKeys(redisUrl, prefix),
})

/** Three replicas of the real app, sharing one Redis under a prefix of this test's own. */
describe('a fleet of three replicas on one Redis', () => {
  it('mints once per credential on a concurrent cold start, and every replica serves that token', async () => {
    const apps = await fleet.start()
    expect(fleet.sim.mints(IMS_CLIENT_ID)).toBe(1)
    expect(fleet.sim.mints(EQP_APP_ID)).toBe(1)
    const tokens = await Promise.all(apps.map((app) => tokenOf(app)))
    expect(new Set(tokens).size).toBe(1)
    const eqp = await Promise.all(apps.map((app) => tokenOf(app, 'marketplace')))
    expect(new Set(eqp).size).toBe(1)
  })

  it('turns 300 concurrent refreshes naming one rejected token into one mint and one new token for all', async () => {
    const apps = await fleet.start()
    const rejected = await tokenOf(apps[0]!)
    const answers = await Promise.all(Array.from({ length: 300 }, (_, i) => refresh(apps[i % 3]!, rejected)))
    expect(answers.every((r) => r.statusCode === 200)).toBe(true)
    const issued = new Set(answers.map((r) => r.json().access_token as string))
    expect(issued.size).toBe(1)
    expect(issued.has(rejected)).toBe(false)
    expect(fleet.sim.mints(IMS_CLIENT_ID)).toBe(2) // the cold start, then this one
  })

  it('serves a token forced on one replica from the others within 500 ms, without asking them', async () => {
    const apps = await fleet.start()
    const old = await tokenOf(apps[1]!)
    const forced = (await refresh(apps[0]!, old)).json().access_token as string
    const started = Date.now()
    await eventually(async () => {
      expect(await tokenOf(apps[1]!)).toBe(forced)
      expect(await tokenOf(apps[2]!)).toBe(forced)
    }, 500)
    expect(Date.now() - started).toBeLessThan(500)
    expect(fleet.sim.mints(IMS_CLIENT_ID)).toBe(2)
  })

  it('keeps the refresh debounce fleet-wide: a refresh within 10 s of a mint anywhere returns that token', async () => {
    const apps = await fleet.start()
    const first = (await refresh(apps[0]!, await tokenOf(apps[0]!))).json().access_token as string
    await eventually(async () => expect(await tokenOf(apps[2]!)).toBe(first), 500)
    const again = (await refresh(apps[2]!)).json().access_token as string
    expect(again).toBe(first)
    expect(fleet.sim.mints(IMS_CLIENT_ID)).toBe(2)
  })

  it('lets a restarted replica take the stored tokens and mint nothing', async () => {
    const apps = await fleet.start()
    const before = await tokenOf(apps[0]!)
    expect(await tokenOf(await fleet.restart(0))).toBe(before)
    expect(fleet.sim.mints()).toBe(2)
  })

  it('refreshes in the background once for the whole fleet', async () => {
    // 6 s tokens with a 0.5 margin: due 1.5 to 3 s after minting (by the spread), less up to 0.3 s
    // of each replica's jitter; the token that replaces it is due no sooner than 1.2 s after that.
    fleet.sim.behave(IMS_CLIENT_ID, { expiresIn: 6 })
    const apps = await fleet.start({ REFRESH_MARGIN: '0.5' })
    const first = await tokenOf(apps[0]!)
    const due = Math.min(...apps.map((app) => app.tokens.status('adobe-ims').nextRefreshAt!))
    await new Promise((resolve) => setTimeout(resolve, due - Date.now() + 700))
    expect(fleet.sim.mints(IMS_CLIENT_ID)).toBe(2)
    const tokens = await Promise.all(apps.map((app) => tokenOf(app)))
    expect(new Set(tokens).size).toBe(1)
    expect(tokens[0]).not.toBe(first)
  })

  it('rests the whole fleet after Adobe refuses the secret: one upstream call, however many replicas ask', async () => {
    const apps = await fleet.start()
    const current = await tokenOf(apps[0]!)
    fleet.sim.behave(IMS_CLIENT_ID, { mode: 'reject' })
    const before = fleet.sim.mints(IMS_CLIENT_ID)
    const answers = []
    for (let round = 0; round < 5; round++) {
      answers.push(...(await Promise.all(apps.map((app) => refresh(app, current)))))
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    expect(answers.map((r) => r.json().code)).toEqual(Array(15).fill('UPSTREAM_REJECTED'))
    expect(fleet.sim.mints(IMS_CLIENT_ID) - before).toBe(1)
    // The held token is still served to callers whose need it meets.
    expect(await tokenOf(apps[2]!)).toBe(current)
  })

  it('overtakes a lock holder that died mid-mint once its lock expires', async () => {
    const apps = await fleet.start()
    const old = await tokenOf(apps[0]!)
    // A replica that took the lock and died: its lock outlives it by its TTL, then expires.
    const redis = redisClient(redisUrl)
    await redis.set(`${fleet.prefix}{adobe-ims}:lock`, 'a-dead-replica', 'PX', 1_500)
    await redis.quit()
    const started = Date.now()
    const res = await refresh(apps[1]!, old)
    expect(res.statusCode).toBe(200)
    expect(res.json().access_token).not.toBe(old)
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_200)
    expect(fleet.sim.mints(IMS_CLIENT_ID)).toBe(2)
  })

  it('never lets an older token replace a newer one in Redis (the fence)', async () => {
    const apps = await fleet.start()
    const old = await tokenOf(apps[0]!)
    const newer = (await refresh(apps[0]!, old)).json().access_token as string
    // The first replica re-announces what it holds: the stale write must not win.
    const stale = await apps[1]!.store.get('adobe-ims')
    expect(stale?.accessToken).toBe(newer)
    const older = { ...stale!, accessToken: 'an-older-token', mintedAt: stale!.mintedAt - 60_000 }
    expect(await apps[2]!.store.put('adobe-ims', older)).toBe(false)
    expect((await apps[1]!.store.get('adobe-ims'))?.accessToken).toBe(newer)
    expect(await tokenOf(apps[2]!)).toBe(newer)
  })

  it('keeps no token in Redis in plain text', async () => {
    const apps = await fleet.start()
    const tokens = [await tokenOf(apps[0]!), await tokenOf(apps[0]!, 'marketplace')]
    const redis = redisClient(redisUrl)
    try {
      const keys = await scanKeys(redis, `${escapeGlob(fleet.prefix)}*`)
      expect(keys.sort()).toEqual([`${fleet.prefix}{adobe-ims}:token`, `${fleet.prefix}{marketplace}:token`])
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
    const proxy = await startRedisProxy(redisUrl)
    onTestFinished(() => proxy.close())
    const app = await fleet.replica({ REDIS_URL: proxy.url })
    const before = await tokenOf(app)

    await proxy.stop()
    await eventually(async () =>
      expect((await app.inject({ url: '/readyz' })).json().store.state).toBe('down'),
    )
    expect(await tokenOf(app)).toBe(before)
    const started = Date.now()
    const minted = await refresh(app, before)
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
    expect(fleet.sim.mints(IMS_CLIENT_ID)).toBe(2)
  })
})
