import { pathToFileURL } from 'node:url'
import type { FastifyInstance } from 'fastify'
import { describe, expect, inject, it, onTestFinished } from 'vitest'
import { credentialKey } from '../../src/store/redis.js'
import { freePort, waitForLine, waitForStatus } from '../../tools/process.js'
import { auth, baseEnv, brokerDocument, IMS_CLIENT_ID, SECRETS, writeConfig } from '../helpers/broker.js'
import { askToken, refresh, tokenOf, useFleet } from '../helpers/fleet.js'
import { createManualClock, shiftableClock } from '../helpers/manual-clock.js'
import { deleteKeys, redisClient } from '../helpers/redis-keys.js'
import { startRedisProxy } from '../helpers/redis-proxy.js'
import { startServer } from '../helpers/server-process.js'
import { eventually } from '../store/contract.js'

const redisUrl = inject('redisUrl')
const FIVE_MINUTES = 5 * 60_000
const fleet = useFleet({
  env: () => ({ REDIS_URL: redisUrl }),
  cleanup: (prefix) => deleteKeys(redisUrl, prefix),
})

/**
 * Replicas whose own clocks are 5 minutes ahead and behind share one Redis: each reads its time as
 * Redis TIME, so they agree on when a token expires and when it is due.
 */
describe('the fleet clock', () => {
  const replica = (skewMs: number) => fleet.replica({}, { clock: createManualClock(Date.now() + skewMs) })
  const expiresIn = async (app: FastifyInstance): Promise<number> => {
    const res = await askToken(app)
    expect(res.statusCode).toBe(200)
    return res.json().expires_in as number
  }

  it.each([
    ['behind', 'ahead', -FIVE_MINUTES],
    ['ahead', 'behind', FIVE_MINUTES],
  ])(
    'a token minted by the replica %s is taken, not re-minted, by the one %s, and both count the same expiry',
    async (_a, _b, skew) => {
      // A 5-minute token: on the raw clocks one replica would see it already expired, the other
      // would serve it 5 minutes past its end.
      fleet.sim.behave(IMS_CLIENT_ID, { expiresIn: 300 })
      const first = await replica(skew)
      const second = await replica(-skew)
      expect(fleet.sim.mints(IMS_CLIENT_ID)).toBe(1)
      for (const app of [first, second]) {
        expect(Math.abs(app.clock.now() - Date.now())).toBeLessThan(2000)
        const left = await expiresIn(app)
        expect(left).toBeGreaterThan(290)
        expect(left).toBeLessThanOrEqual(300)
      }
      // And they would refresh at the same moment (give or take the jitter), not 10 minutes apart.
      const due = [first, second].map((app) => app.tokens.status('adobe-ims').nextRefreshAt ?? 0)
      expect(Math.abs((due[0] ?? 0) - (due[1] ?? 0))).toBeLessThan(60_000)
    },
  )

  it('a replica 5 minutes ahead that starts with Redis unreachable re-stamps what it minted once it reads Redis TIME: served, stored and read elsewhere with its real lifetime', async () => {
    fleet.sim.behave(IMS_CLIENT_ID, { expiresIn: 300 })
    const proxy = await startRedisProxy(redisUrl)
    onTestFinished(() => proxy.close())
    await proxy.stop()
    // Real timers (the store's waits and reconnects), a reading 5 minutes ahead.
    const clock = shiftableClock()
    clock.shift(FIVE_MINUTES)
    const ahead = await fleet.replica({ REDIS_URL: proxy.url }, { clock })
    expect(ahead.store.status().state).toBe('down')
    // Minted and timed on its own clock, which it cannot tell is off yet.
    expect(await expiresIn(ahead)).toBeGreaterThan(290)
    expect(fleet.sim.mints(IMS_CLIENT_ID)).toBe(1)

    await proxy.start()
    const redis = redisClient(redisUrl)
    onTestFinished(async () => {
      await redis.quit()
    })
    const key = credentialKey(fleet.prefix, 'token', 'adobe-ims')
    await eventually(async () => expect(await redis.exists(key)).toBe(1), 10_000)
    expect(ahead.store.status().state).toBe('ok')
    // Written back re-stamped: minted now and expiring 5 minutes from now on Redis's time, not 10.
    const ttl = await redis.pttl(key)
    expect(ttl).toBeGreaterThan(290_000)
    expect(ttl).toBeLessThanOrEqual(300_000)
    expect(Math.abs(Number(await redis.hget(key, 'm')) - Date.now())).toBeLessThan(10_000)
    const left = await expiresIn(ahead)
    expect(left).toBeGreaterThan(290)
    expect(left).toBeLessThanOrEqual(300)

    // A replica whose clock is right takes that token as it is, and counts the same expiry.
    const right = await fleet.replica()
    expect(fleet.sim.mints(IMS_CLIENT_ID)).toBe(1)
    expect(await tokenOf(right)).toBe(await tokenOf(ahead))
    expect(Math.abs((await expiresIn(right)) - (await expiresIn(ahead)))).toBeLessThanOrEqual(1)
    // And they would refresh together (each replica's own jitter apart), not 5 minutes apart.
    const due = [ahead, right].map((app) => app.tokens.status('adobe-ims').nextRefreshAt ?? 0)
    expect(Math.abs((due[0] ?? 0) - (due[1] ?? 0))).toBeLessThan(10_000)

    // Its settings' start moved too: a token it mints now does not fence out (by the generation
    // fence) one the fleet mints after it.
    const fromAhead = await refresh(ahead, await tokenOf(ahead))
    expect(fromAhead.statusCode).toBe(200)
    await eventually(async () => expect(await tokenOf(right)).toBe(fromAhead.json().access_token), 1000)
    const fromRight = await refresh(right, fromAhead.json().access_token)
    expect(fromRight.statusCode).toBe(200)
    expect(await redis.hget(key, 'm')).toBe(String(right.tokens.peek('adobe-ims')?.mintedAt))
    await eventually(async () => expect(await tokenOf(ahead)).toBe(fromRight.json().access_token), 1000)
  })
})

/** The same, with real broker processes whose wall clocks are shifted 5 minutes (a preloaded module). */
describe('the fleet clock across processes with skewed wall clocks', () => {
  const SKEWED_CLOCK = pathToFileURL(new URL('../helpers/skewed-clock.mjs', import.meta.url).pathname).href

  it('a replica 5 minutes ahead and one 5 minutes behind mint once per cycle, serve nothing expired and agree on expiry and refresh', async () => {
    const { sim, prefix } = fleet
    // 20 s tokens, due when half is left at the latest: a whole cycle fits in the test.
    sim.behave(IMS_CLIENT_ID, { expiresIn: 20 })
    const config = await writeConfig(brokerDocument(sim.url))
    onTestFinished(() => config.cleanup())

    const start = async (skewMs: number) => {
      const port = await freePort()
      const child = startServer({
        ...baseEnv(config.path),
        PORT: String(port),
        REDIS_URL: redisUrl,
        REDIS_KEY_PREFIX: prefix,
        LOG_LEVEL: 'warn',
        REFRESH_MARGIN: '0.5',
        NODE_OPTIONS: `--import ${SKEWED_CLOCK}`,
        TEST_CLOCK_SKEW_MS: String(skewMs),
      })
      onTestFinished(() => child.stop(2000).then(() => undefined))
      const url = `http://127.0.0.1:${port}`
      await waitForStatus(`${url}/readyz`, { child, timeoutMs: 20_000 })
      // The process saw its own clock off, and took Redis TIME instead.
      await waitForLine(child, /this clock differs from Redis TIME/)
      return url
    }
    const get = async <T>(url: string, path: string): Promise<T> => {
      const res = await fetch(`${url}${path}`, { headers: auth(SECRETS.keyAll) })
      expect(res.status).toBe(200)
      return (await res.json()) as T
    }

    const ahead = await start(FIVE_MINUTES)
    const behind = await start(-FIVE_MINUTES)
    // On its own clock, the one behind would see the token minted 5 minutes in its future; the one
    // ahead, a token that expired as it was minted. On the fleet clock both take it as it is.
    expect(sim.mints(IMS_CLIENT_ID)).toBe(1)
    type Served = { access_token: string; expires_in: number; expires_at: string }
    const due: number[] = []
    for (const url of [ahead, behind]) {
      const token = await get<Served>(url, '/v1/tokens/adobe-ims')
      expect(token.expires_in).toBeGreaterThan(10)
      expect(token.expires_in).toBeLessThanOrEqual(20)
      expect(Math.abs(Date.parse(token.expires_at) - (Date.now() + 20_000))).toBeLessThan(5_000)
      type Listed = { credentials: Array<{ id: string; next_refresh_at: string }> }
      const { credentials } = await get<Listed>(url, '/v1/credentials')
      const ims = credentials.find((c) => c.id === 'adobe-ims')
      due.push(Date.parse(ims?.next_refresh_at ?? ''))
    }
    // Due at the same place of the spread; only the replicas' jitter (at most 1 s here) apart.
    expect(Math.abs((due[0] ?? 0) - (due[1] ?? 0))).toBeLessThanOrEqual(1_500)
    expect(sim.mints(IMS_CLIENT_ID)).toBe(1)

    // Through the refresh: never an expired token, one mint for both, and then both on the new token.
    const first = (await get<Served>(ahead, '/v1/tokens/adobe-ims')).access_token
    const until = Math.max(...due) + 1_500
    while (Date.now() < until) {
      for (const url of [ahead, behind]) {
        const token = await get<Served>(url, '/v1/tokens/adobe-ims')
        expect(Date.parse(token.expires_at)).toBeGreaterThan(Date.now())
      }
      expect(sim.mints(IMS_CLIENT_ID)).toBeLessThanOrEqual(2)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    expect(sim.mints(IMS_CLIENT_ID)).toBe(2)
    const now = await Promise.all([ahead, behind].map((url) => get<Served>(url, '/v1/tokens/adobe-ims')))
    expect(now[0]?.access_token).not.toBe(first)
    expect(now[1]?.access_token).toBe(now[0]?.access_token)
  })
})
