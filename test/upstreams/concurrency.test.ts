import { afterEach, describe, expect, it } from 'vitest'
import { createSimulator, type Simulator } from '../../src/simulator/server.js'
import { auth, buildBroker, SECRETS } from '../helpers/broker.js'

/** Credentials spread over two upstream origins (two simulators), all of them due at once. */
describe('UPSTREAM_CONCURRENCY', () => {
  const sims: Simulator[] = []
  afterEach(async () => {
    await Promise.all(sims.map((s) => s.close()))
    sims.length = 0
  })

  it('keeps at most 4 token requests in flight per origin while 200 credentials start and are asked for at once', async () => {
    for (let i = 0; i < 2; i++) {
      const sim = createSimulator()
      await sim.listen()
      sim.behave('*', { latencyMs: 40 })
      sims.push(sim)
    }
    const credentials: Record<string, unknown> = {}
    for (let i = 0; i < 200; i++) {
      credentials[`c${i}`] = {
        type: 'ims',
        environment: 'production',
        baseUrl: sims[i % 2]?.url,
        clientId: `client-${i}`,
        clientSecret: { env: 'TEST_IMS_SECRET' },
        scopes: ['openid'],
      }
    }
    const document = {
      credentials,
      clients: { 'ops-tools': { key: { env: 'TEST_KEY_ALL' }, credentials: ['*'] } },
    }
    const app = await buildBroker({
      simUrl: sims[0]?.url ?? '',
      document,
      warm: false,
      env: { UPSTREAM_CONCURRENCY: '4', ALLOW_INSECURE_UPSTREAM: 'true' },
    })
    try {
      // Warm-up and 200 callers asking for every credential, all at the same moment.
      const warming = app.tokens.start()
      const answers = await Promise.all(
        Object.keys(credentials).map((id) =>
          app.inject({ url: `/v1/tokens/${id}`, headers: auth(SECRETS.keyAll) }),
        ),
      )
      await warming
      expect(answers.map((r) => r.statusCode)).toEqual(answers.map(() => 200))
      for (const sim of sims) {
        expect(sim.mints()).toBe(100)
        // Measured at the upstream: never more than the limit, and the limit is used (not one by one).
        expect(sim.maxInFlight()).toBeLessThanOrEqual(4)
        expect(sim.maxInFlight()).toBeGreaterThanOrEqual(2)
      }
    } finally {
      await app.close()
    }
  })

  it("lets UPSTREAM_CONCURRENCY requests to one origin be in flight at once, beyond the pool's default sockets", async () => {
    const sim = createSimulator()
    await sim.listen()
    sims.push(sim)
    // Long enough that every request is still in flight when the last one starts.
    sim.behave('*', { latencyMs: 1000 })
    const ids = Array.from({ length: 12 }, (_, i) => `c${i}`)
    const credentials = Object.fromEntries(
      ids.map((id) => [
        id,
        {
          type: 'ims',
          environment: 'production',
          baseUrl: sim.url,
          clientId: `client-${id}`,
          clientSecret: { env: 'TEST_IMS_SECRET' },
          scopes: ['openid'],
        },
      ]),
    )
    const app = await buildBroker({
      simUrl: sim.url,
      document: {
        credentials,
        clients: { 'ops-tools': { key: { env: 'TEST_KEY_ALL' }, credentials: ['*'] } },
      },
      warm: false,
      env: { UPSTREAM_CONCURRENCY: '12', ALLOW_INSECURE_UPSTREAM: 'true' },
    })
    try {
      const answers = await Promise.all(
        ids.map((id) => app.inject({ url: `/v1/tokens/${id}`, headers: auth(SECRETS.keyAll) })),
      )
      expect(answers.map((r) => r.statusCode)).toEqual(answers.map(() => 200))
      expect(sim.mints()).toBe(12)
      expect(sim.maxInFlight()).toBe(12)
    } finally {
      await app.close()
    }
  })
})
