import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, inject, it, onTestFinished } from 'vitest'
import type { Simulator } from '../../src/simulator/server.js'
import { auth, buildBroker, IMS_CLIENT_ID, SECRETS, startSimulator } from '../helpers/broker.js'
import { createManualClock } from '../helpers/manual-clock.js'
import { deleteKeys, uniquePrefix } from '../helpers/redis-keys.js'

const redisUrl = inject('redisUrl')
const FIVE_MINUTES = 5 * 60_000

/**
 * Replicas whose own clocks are 5 minutes ahead and behind share one Redis: each reads its time as
 * Redis TIME, so they agree on when a token expires and when it is due.
 */
describe('the fleet clock', () => {
  let sim: Simulator
  afterEach(async () => {
    await sim?.close()
  })

  const replica = async (skewMs: number, prefix: string): Promise<FastifyInstance> => {
    const app = await buildBroker({
      simUrl: sim.url,
      clock: createManualClock(Date.now() + skewMs),
      env: { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: prefix },
    })
    onTestFinished(() => app.close())
    return app
  }
  const expiresIn = async (app: FastifyInstance): Promise<number> => {
    const res = await app.inject({ url: '/v1/tokens/adobe-ims', headers: auth(SECRETS.keyAll) })
    expect(res.statusCode).toBe(200)
    return res.json().expires_in as number
  }

  it.each([
    ['behind', 'ahead', -FIVE_MINUTES],
    ['ahead', 'behind', FIVE_MINUTES],
  ])(
    'a token minted by the replica %s is taken, not re-minted, by the one %s, and both count the same expiry',
    async (_a, _b, skew) => {
      sim = await startSimulator()
      // A 5-minute token: on the raw clocks one replica would see it already expired, the other
      // would serve it 5 minutes past its end.
      sim.behave(IMS_CLIENT_ID, { expiresIn: 300 })
      const prefix = uniquePrefix()
      onTestFinished(() => deleteKeys(redisUrl, prefix))
      const first = await replica(skew, prefix)
      const second = await replica(-skew, prefix)
      expect(sim.mints(IMS_CLIENT_ID)).toBe(1)
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
})
