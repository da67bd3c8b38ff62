import type { FastifyInstance } from 'fastify'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { Behaviour, Simulator } from '../../src/simulator/server.js'
import { buildBroker, EQP_APP_ID, IMS_CLIENT_ID, SECRETS, startSimulator } from '../helpers/broker.js'
import { type ShiftableClock, shiftableClock } from '../helpers/manual-clock.js'
import { eventually } from '../store/contract.js'
import { ALL, expectError, getToken, noJitter, refresh, retryAfterSeconds } from './support.js'

let sim: Simulator
beforeAll(async () => {
  sim = await startSimulator()
})
afterAll(async () => {
  await sim.close()
})

let app: FastifyInstance | undefined
afterEach(async () => {
  await app?.close()
  app = undefined
})

/** The failures upstream can have that are not a refused secret: 503 for callers. */
const TRANSIENT: Array<[string, Partial<Behaviour>]> = [
  ['5xx', { mode: 'error5xx' }],
  ['500', { mode: 'error5xx', status: 500 }],
  ['429', { mode: 'rate_limited' }],
  ['not JSON', { mode: 'malformed', malformed: 'not_json' }],
  ['HTML', { mode: 'malformed', malformed: 'html' }],
  ['no token', { mode: 'malformed', malformed: 'no_token' }],
  ['expires_in 0', { mode: 'malformed', malformed: 'expires_zero' }],
  ['expires_in huge', { mode: 'malformed', malformed: 'expires_huge' }],
  ['a hang (timeout)', { mode: 'hang' }],
]
/** Small enough that a hanging upstream fails the whole mint (3 attempts) in about a second. */
const FAST_TIMEOUT = { UPSTREAM_TIMEOUT_MS: '300' }

describe('with a held token older than 10 s, an explicit min_ttl forces a mint', () => {
  let clock: ShiftableClock
  let held: string
  /** Warm, with the held tokens made 11 s old. */
  async function start(behaviour?: Partial<Behaviour>): Promise<FastifyInstance> {
    sim.reset()
    clock = shiftableClock()
    // A short upstream timeout only where a hang is tested: elsewhere a slow machine must not turn
    // a slow answer into an extra attempt.
    const env = behaviour?.mode === 'hang' ? FAST_TIMEOUT : {}
    app = await buildBroker({ simUrl: sim.url, clock, random: noJitter, env })
    held = (await getToken(app, 'adobe-ims')).body.access_token
    clock.shift(11_000)
    if (behaviour) sim.behave(IMS_CLIENT_ID, behaviour)
    return app
  }

  it('502 UPSTREAM_REJECTED when Adobe refuses the secret; not retried; the default still serves', async () => {
    await start({ mode: 'reject' })
    const before = sim.mints(IMS_CLIENT_ID)
    const res = (await getToken(app!, 'adobe-ims', '?min_ttl=86395')).res
    expectError(res, 502, 'UPSTREAM_REJECTED')
    expect(res.json().message).toBe('Adobe refused the secret of credential "adobe-ims"')
    expect(res.body).not.toContain(SECRETS.ims)
    // The vendor is named at the edge: /readyz words the credential's last error.
    const ready = await app!.inject({ method: 'GET', url: '/readyz' })
    expect(ready.json().credentials['adobe-ims'].last_error).toMatchObject({
      code: 'UPSTREAM_REJECTED',
      message: expect.stringMatching(/^Adobe IMS: token request rejected \(HTTP 400, invalid_client\)$/),
    })
    // A refused secret is not retried inside the mint...
    expect(sim.mints(IMS_CLIENT_ID)).toBe(before + 1)
    // ...nor by callers asking again (the 30 s brake).
    for (let i = 0; i < 5; i++) {
      expectError((await getToken(app!, 'adobe-ims', '?min_ttl=86395')).res, 502, 'UPSTREAM_REJECTED')
      expectError((await refresh(app!, 'adobe-ims', { rejected_token: held })).res, 502, 'UPSTREAM_REJECTED')
    }
    expect(sim.mints(IMS_CLIENT_ID)).toBe(before + 1)
    // The default min_ttl: the held token is still good and is served.
    const { res: ok, body } = await getToken(app!, 'adobe-ims')
    expect(ok.statusCode).toBe(200)
    expect(body.access_token).toBe(held)
  })

  it('502 for an EQP rejection too', async () => {
    await start()
    sim.behave(EQP_APP_ID, { mode: 'reject', status: 403 })
    expectError((await getToken(app!, 'marketplace', '?min_ttl=7200')).res, 502, 'UPSTREAM_REJECTED')
    expect((await getToken(app!, 'marketplace')).res.statusCode).toBe(200)
  })

  it.each(TRANSIENT)(
    '503 UPSTREAM_UNAVAILABLE with Retry-After on %s; the default still serves',
    async (_n, b) => {
      await start(b)
      const before = sim.mints(IMS_CLIENT_ID)
      const res = (await getToken(app!, 'adobe-ims', '?min_ttl=86395')).res
      expectError(res, 503, 'UPSTREAM_UNAVAILABLE')
      expect(res.json().message).toBe(
        'Adobe is unavailable and no token meeting the request is held for credential "adobe-ims"',
      )
      retryAfterSeconds(res)
      // Transient failures are retried, a bounded number of times.
      const attempts = sim.mints(IMS_CLIENT_ID) - before
      expect(attempts).toBeGreaterThanOrEqual(1)
      expect(attempts).toBeLessThanOrEqual(3)
      // Callers asking again meanwhile do not hammer upstream.
      for (let i = 0; i < 5; i++) {
        expectError((await getToken(app!, 'adobe-ims', '?min_ttl=86395')).res, 503, 'UPSTREAM_UNAVAILABLE')
      }
      expect(sim.mints(IMS_CLIENT_ID) - before).toBe(attempts)
      const { res: ok, body } = await getToken(app!, 'adobe-ims')
      expect(ok.statusCode).toBe(200)
      expect(body.access_token).toBe(held)
      expect(ok.headers['cache-control']).toBe('no-store')
    },
  )

  it("Retry-After follows upstream's Retry-After", async () => {
    await start({ mode: 'rate_limited', retryAfter: 120 })
    const res = (await getToken(app!, 'adobe-ims', '?min_ttl=86395')).res
    expectError(res, 503, 'UPSTREAM_UNAVAILABLE')
    expect(retryAfterSeconds(res)).toBeGreaterThanOrEqual(119)
  })

  it('a refresh that must mint fails with 503 while upstream is down; GET keeps serving', async () => {
    await start({ mode: 'error5xx' })
    const res = (await refresh(app!, 'adobe-ims', { rejected_token: held })).res
    expectError(res, 503, 'UPSTREAM_UNAVAILABLE')
    retryAfterSeconds(res)
    expect((await getToken(app!, 'adobe-ims')).body.access_token).toBe(held)
  })

  it("serves a token another replica stored while this one's own mint was failing (explicit min_ttl)", async () => {
    await start({ mode: 'error5xx', latencyMs: 400 })
    const before = sim.mints(IMS_CLIENT_ID)
    const asking = getToken(app!, 'adobe-ims', '?min_ttl=86395')
    // Upstream has the request; meanwhile another replica's token reaches the store.
    await eventually(() => expect(sim.mints(IMS_CLIENT_ID)).toBeGreaterThan(before))
    const now = clock.now()
    const fromFleet = {
      accessToken: 'minted-by-another-replica',
      tokenType: 'bearer',
      mintedAt: now,
      expiresAt: now + 86_399_000,
    }
    expect(await app!.store.put('adobe-ims', fromFleet)).toBe(true)
    const { res, body } = await asking
    expect(res.statusCode, res.body).toBe(200)
    expect(body.access_token).toBe(fromFleet.accessToken)
    expect(body.access_token).not.toBe(held)
  })

  it('once upstream is back and the brake is over, the next need mints', async () => {
    await start({ mode: 'error5xx' })
    const failed = (await getToken(app!, 'adobe-ims', '?min_ttl=86395')).res
    expectError(failed, 503, 'UPSTREAM_UNAVAILABLE')
    sim.reset()
    clock.shift(retryAfterSeconds(failed) * 1000 + 1)
    const { res, body } = await getToken(app!, 'adobe-ims', '?min_ttl=86395')
    expect(res.statusCode).toBe(200)
    expect(body.access_token).not.toBe(held)
  })
})

describe('a credential that fails at warm-up (no token held)', () => {
  beforeEach(() => sim.reset())

  it('502 UPSTREAM_REJECTED for a refused secret; the other credential is served', async () => {
    sim.behave(IMS_CLIENT_ID, { mode: 'reject' })
    app = await buildBroker({ simUrl: sim.url, random: noJitter })
    expect(sim.mints(IMS_CLIENT_ID)).toBe(1)
    for (const res of [
      (await getToken(app, 'adobe-ims')).res,
      (await getToken(app, 'adobe-ims', '?min_ttl=0')).res,
      (await refresh(app, 'adobe-ims')).res,
      (await refresh(app, 'adobe-ims', { rejected_token: 'whatever' })).res,
    ]) {
      expectError(res, 502, 'UPSTREAM_REJECTED')
      expect(res.body).not.toContain(SECRETS.ims)
    }
    expect(sim.mints(IMS_CLIENT_ID)).toBe(1)
    expect((await getToken(app, 'marketplace')).res.statusCode).toBe(200)
  })

  it.each(TRANSIENT)('503 with Retry-After on %s', async (_n, b) => {
    sim.behave(IMS_CLIENT_ID, b)
    app = await buildBroker({ simUrl: sim.url, random: noJitter, env: b.mode === 'hang' ? FAST_TIMEOUT : {} })
    const res = (await getToken(app, 'adobe-ims')).res
    expectError(res, 503, 'UPSTREAM_UNAVAILABLE')
    retryAfterSeconds(res)
    expect((await getToken(app, 'marketplace')).res.statusCode).toBe(200)
    // The broker's own words only: no upstream body, no secret.
    expect(res.json().message).not.toMatch(/Maintenance|Service unavailable|Too many requests/)
  })

  it('recovers by itself once upstream is back (background retry)', async () => {
    sim.behave(IMS_CLIENT_ID, { mode: 'error5xx' })
    app = await buildBroker({ simUrl: sim.url, random: noJitter })
    expectError((await getToken(app, 'adobe-ims')).res, 503, 'UPSTREAM_UNAVAILABLE')
    sim.reset()
    // The first transient brake is 1 s; the timer retries without any caller asking.
    const deadline = Date.now() + 5_000
    let status = 0
    while (Date.now() < deadline) {
      status = (await app.inject({ url: '/v1/tokens/adobe-ims', headers: ALL })).statusCode
      if (status === 200) break
      await new Promise((r) => setTimeout(r, 100))
    }
    expect(status).toBe(200)
  })
})
