import type { FastifyInstance } from 'fastify'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { Simulator } from '../../src/simulator/server.js'
import { buildBroker, EQP_APP_ID, IMS_CLIENT_ID, startSimulator } from '../helpers/broker.js'
import { type ShiftableClock, shiftableClock } from '../helpers/manual-clock.js'
import { getToken, IMS_ONLY, noJitter, refresh } from './support.js'

let sim: Simulator
let app: FastifyInstance
let clock: ShiftableClock
beforeAll(async () => {
  sim = await startSimulator()
})
afterAll(async () => {
  await sim.close()
})
beforeEach(async () => {
  sim.reset()
  clock = shiftableClock()
  app = await buildBroker({ simUrl: sim.url, clock, random: noJitter })
})
afterEach(async () => {
  await app.close()
})

describe('POST /v1/tokens/{credential}/refresh', () => {
  it.each([
    ['adobe-ims', IMS_CLIENT_ID],
    ['marketplace', EQP_APP_ID],
  ])('%s: rejected_token = the current token → a new token, one mint', async (credential, upstreamId) => {
    const current = (await getToken(app, credential)).body
    const before = sim.mints(upstreamId)
    const { res, body } = await refresh(app, credential, { rejected_token: current.access_token })
    expect(res.statusCode).toBe(200)
    expect(res.headers['cache-control']).toBe('no-store')
    expect(body.credential).toBe(credential)
    expect(body.access_token).not.toBe(current.access_token)
    expect(body.headers.Authorization).toBe(`Bearer ${body.access_token}`)
    expect(sim.mints(upstreamId)).toBe(before + 1)
    // GET now serves the new token.
    expect((await getToken(app, credential)).body.access_token).toBe(body.access_token)
  })

  it('rejected_token = a stale token → the current one, no mint', async () => {
    const first = (await getToken(app, 'adobe-ims')).body.access_token
    const second = (await refresh(app, 'adobe-ims', { rejected_token: first })).body.access_token
    expect(second).not.toBe(first)
    const before = sim.mints(IMS_CLIENT_ID)
    for (const stale of [first, 'never-issued-by-anyone']) {
      const { res, body } = await refresh(app, 'adobe-ims', { rejected_token: stale })
      expect(res.statusCode).toBe(200)
      expect(body.access_token).toBe(second)
    }
    expect(sim.mints(IMS_CLIENT_ID)).toBe(before)
  })

  it('no body: mints when the token is older than 10 s; a second one right after gets the same token', async () => {
    const held = (await getToken(app, 'adobe-ims')).body.access_token
    clock.shift(11_000)
    const before = sim.mints(IMS_CLIENT_ID)
    const first = await refresh(app, 'adobe-ims')
    expect(first.res.statusCode).toBe(200)
    expect(first.body.access_token).not.toBe(held)
    expect(sim.mints(IMS_CLIENT_ID)).toBe(before + 1)
    // Debounce: within 10 s of the last mint, the token just minted.
    const second = await refresh(app, 'adobe-ims')
    expect(second.res.statusCode).toBe(200)
    expect(second.body.access_token).toBe(first.body.access_token)
    const third = await refresh(app, 'adobe-ims', {})
    expect(third.body.access_token).toBe(first.body.access_token)
    expect(sim.mints(IMS_CLIENT_ID)).toBe(before + 1)
  })

  it('no body right after warm-up: the warm-up token is fresh enough (no mint)', async () => {
    const held = (await getToken(app, 'marketplace')).body.access_token
    const before = sim.mints(EQP_APP_ID)
    expect((await refresh(app, 'marketplace')).body.access_token).toBe(held)
    expect(sim.mints(EQP_APP_ID)).toBe(before)
  })

  it('concurrent refreshes of the current token share one mint', async () => {
    const current = (await getToken(app, 'adobe-ims')).body.access_token
    sim.behave(IMS_CLIENT_ID, { latencyMs: 200 })
    const before = sim.mints(IMS_CLIENT_ID)
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        refresh(app, 'adobe-ims', i % 2 ? { rejected_token: current } : undefined),
      ),
    )
    expect(answers.every((a) => a.res.statusCode === 200)).toBe(true)
    const served = new Set(answers.map((a) => a.body.access_token))
    expect(served.has(current)).toBe(true) // the no-body ones within 10 s of warm-up get the held token
    const rejectedAnswers = new Set(answers.filter((_, i) => i % 2).map((a) => a.body.access_token))
    expect(rejectedAnswers.size).toBe(1)
    expect(rejectedAnswers.has(current)).toBe(false)
    expect(sim.mints(IMS_CLIENT_ID)).toBe(before + 1)
  })

  it('a restricted client refreshes the credential it may use', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/tokens/adobe-ims/refresh', headers: IMS_ONLY })
    expect(res.statusCode).toBe(200)
    expect(res.json().credential).toBe('adobe-ims')
  })
})
