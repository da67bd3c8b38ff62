import type { FastifyInstance } from 'fastify'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { Simulator } from '../../src/simulator/server.js'
import { buildBroker, EQP_APP_ID, IMS_CLIENT_ID, startSimulator } from '../helpers/broker.js'
import { type ShiftableClock, shiftableClock } from '../helpers/manual-clock.js'
import { expectError, getToken, noJitter } from './support.js'

let sim: Simulator
beforeAll(async () => {
  sim = await startSimulator()
})
afterAll(async () => {
  await sim.close()
})

/** `expires_in` is the whole seconds from `now` to `expires_at`. */
function expectConsistentLifetime(body: { expires_at: string; expires_in: number }, now: number): void {
  expect(Number.isInteger(body.expires_in)).toBe(true)
  expect(body.expires_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  const left = (Date.parse(body.expires_at) - now) / 1000
  // Whole seconds, rounded down, taken at most a second or so before `now`.
  expect(body.expires_in).toBeLessThanOrEqual(Math.floor(left) + 1)
  expect(body.expires_in).toBeGreaterThanOrEqual(Math.floor(left) - 2)
}

describe('GET /v1/tokens/{credential}', () => {
  let app: FastifyInstance
  beforeAll(async () => {
    sim.reset()
    app = await buildBroker({ simUrl: sim.url })
  })
  afterAll(async () => {
    await app.close()
  })

  it('serves an IMS token with Authorization and X-API-Key headers, not cached', async () => {
    const { res, body } = await getToken(app, 'adobe-ims')
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^application\/json/)
    expect(res.headers['cache-control']).toBe('no-store')
    expect(Object.keys(body).sort()).toEqual(
      ['access_token', 'credential', 'expires_at', 'expires_in', 'headers', 'token_type', 'type'].sort(),
    )
    expect(body.credential).toBe('adobe-ims')
    expect(body.type).toBe('ims')
    expect(body.token_type).toBe('bearer')
    expect(body.access_token).toMatch(/^eyJ/)
    expect(body.headers).toEqual({ Authorization: `Bearer ${body.access_token}`, 'X-API-Key': IMS_CLIENT_ID })
    expectConsistentLifetime(body, Date.now())
    // The simulator grants 86399 s; the token was minted moments ago.
    expect(body.expires_in).toBeGreaterThan(86_300)
    expect(body.expires_in).toBeLessThanOrEqual(86_399)
  })

  it('serves an EQP token with mage_id and Authorization alone', async () => {
    const { res, body } = await getToken(app, 'marketplace')
    expect(res.statusCode).toBe(200)
    expect(res.headers['cache-control']).toBe('no-store')
    expect(body.credential).toBe('marketplace')
    expect(body.type).toBe('eqp')
    expect(body.token_type).toBe('bearer')
    expect(body.mage_id).toMatch(/^MAG\d{9}$/)
    expect(body.access_token.length).toBeGreaterThan(10)
    expect(body.headers).toEqual({ Authorization: `Bearer ${body.access_token}` })
    expectConsistentLifetime(body, Date.now())
    expect(body.expires_in).toBeGreaterThan(7_100)
    expect(body.expires_in).toBeLessThanOrEqual(7_200)
  })

  it('answers from memory: many calls, one upstream request per credential', async () => {
    const before = { ims: sim.mints(IMS_CLIENT_ID), eqp: sim.mints(EQP_APP_ID) }
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => getToken(app, i % 2 ? 'adobe-ims' : 'marketplace')),
    )
    expect(answers.every((a) => a.res.statusCode === 200)).toBe(true)
    expect(new Set(answers.map((a) => a.body.access_token)).size).toBe(2)
    expect(sim.mints(IMS_CLIENT_ID)).toBe(before.ims)
    expect(sim.mints(EQP_APP_ID)).toBe(before.eqp)
  })

  it('accepts an explicit min_ttl the held token meets, without a mint', async () => {
    const held = (await getToken(app, 'adobe-ims')).body.access_token
    const before = sim.mints(IMS_CLIENT_ID)
    for (const minTtl of [0, 60, 3600, 86_000]) {
      const { res, body } = await getToken(app, 'adobe-ims', `?min_ttl=${minTtl}`)
      expect(res.statusCode).toBe(200)
      expect(body.access_token).toBe(held)
      expect(body.expires_in).toBeGreaterThanOrEqual(minTtl)
    }
    expect(sim.mints(IMS_CLIENT_ID)).toBe(before)
  })

  it('400 BAD_REQUEST when min_ttl is more than any fresh token can have', async () => {
    const before = sim.mints()
    // IMS grants 86399 s: a token minted seconds ago cannot have 86400 left, nor can any new one.
    expectError((await getToken(app, 'adobe-ims', '?min_ttl=86400')).res, 400, 'BAD_REQUEST')
    // EQP grants 7200 s.
    expectError((await getToken(app, 'marketplace', '?min_ttl=7201')).res, 400, 'BAD_REQUEST')
    expect(sim.mints()).toBe(before)
  })
})

describe('on a broker whose clock the test moves', () => {
  let app: FastifyInstance
  let clock: ShiftableClock
  beforeEach(async () => {
    sim.reset()
    clock = shiftableClock()
    app = await buildBroker({ simUrl: sim.url, clock, random: noJitter })
  })
  afterEach(async () => {
    await app.close()
  })

  describe('expires_in over the life of one token', () => {
    it('counts down with the clock, though the rest of the body is rendered once per token', async () => {
      const first = (await getToken(app, 'adobe-ims')).body
      clock.shift(5_000)
      const later = (await getToken(app, 'adobe-ims')).body
      expect(later.access_token).toBe(first.access_token)
      expect(first.expires_in - later.expires_in).toBeGreaterThanOrEqual(4)
      expect(first.expires_in - later.expires_in).toBeLessThanOrEqual(6)
      expectConsistentLifetime(later, clock.now())
      clock.shift(3_600_000)
      const hourLater = (await getToken(app, 'adobe-ims')).body
      expect(hourLater.access_token).toBe(first.access_token)
      expectConsistentLifetime(hourLater, clock.now())
      expect({ ...hourLater, expires_in: 0 }).toEqual({ ...first, expires_in: 0 })
    })
  })

  describe('min_ttl above what the held token has left', () => {
    it('mints a new token first once the held one is older than 10 s', async () => {
      const held = (await getToken(app, 'adobe-ims')).body
      clock.shift(11_000)
      const before = sim.mints(IMS_CLIENT_ID)
      const { res, body } = await getToken(app, 'adobe-ims', '?min_ttl=86395')
      expect(res.statusCode).toBe(200)
      expect(body.access_token).not.toBe(held.access_token)
      expect(body.expires_in).toBeGreaterThanOrEqual(86_395)
      // expires_in follows the broker's clock, consistent with expires_at.
      expectConsistentLifetime(body, clock.now())
      expect(sim.mints(IMS_CLIENT_ID)).toBe(before + 1)
      // The new token is now held: the default serves it without another mint.
      expect((await getToken(app, 'adobe-ims')).body.access_token).toBe(body.access_token)
      expect(sim.mints(IMS_CLIENT_ID)).toBe(before + 1)
    })

    it('still 400 when a just-minted token falls short (no mint loop)', async () => {
      clock.shift(11_000)
      // The simulator now grants short tokens: the mint happens, and its answer cannot meet min_ttl.
      sim.behave(IMS_CLIENT_ID, { expiresIn: 600 })
      const before = sim.mints(IMS_CLIENT_ID)
      expectError((await getToken(app, 'adobe-ims', '?min_ttl=86395')).res, 400, 'BAD_REQUEST')
      expect(sim.mints(IMS_CLIENT_ID)).toBe(before + 1)
      // Asking again within 10 s of that mint does not call upstream: nothing it grants would do.
      expectError((await getToken(app, 'adobe-ims', '?min_ttl=86395')).res, 400, 'BAD_REQUEST')
      expect(sim.mints(IMS_CLIENT_ID)).toBe(before + 1)
    })
  })
})
