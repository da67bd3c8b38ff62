// token_broker_requests_total{client,credential,code}: every answer of /v1/* counted, through the
// real app; label values only from configured ids and the error catalogue.
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Simulator } from '../../src/simulator/server.js'
import { auth, buildBroker, EQP_APP_ID, IMS_CLIENT_ID, SECRETS, startSimulator } from '../helpers/broker.js'
import { type ShiftableClock, shiftableClock } from '../helpers/manual-clock.js'
import { ALL, expectError, IMS_ONLY, JSON_HEADERS, noJitter } from '../http/support.js'

const METRIC = 'token_broker_requests_total'

/** Every series of the counter, as `client|credential|code` → value. */
function requestSeries(exposition: string): Map<string, number> {
  const series = new Map<string, number>()
  for (const line of exposition.split('\n')) {
    if (!line.startsWith(`${METRIC}{`)) continue
    const m = /^\w+\{client="([^"]*)",credential="([^"]*)",code="([^"]*)"\} (\d+)$/.exec(line)
    expect(m, line).not.toBeNull()
    series.set(`${m![1]}|${m![2]}|${m![3]}`, Number(m![4]))
  }
  return series
}

let sim: Simulator
let app: FastifyInstance
let clock: ShiftableClock
beforeAll(async () => {
  sim = await startSimulator()
  clock = shiftableClock()
  app = await buildBroker({ simUrl: sim.url, clock, random: noJitter })
})
afterAll(async () => {
  await app.close()
  await sim.close()
})

const scrape = async () => requestSeries((await app.inject({ url: '/metrics' })).body)

describe(METRIC, () => {
  // First, while upstream answers: the forced-refresh limit is reached before any brake could answer.
  it('counts a 429 of the forced-refresh limit as RATE_LIMITED', async () => {
    const before = await scrape()
    const first = await app.inject({ url: '/v1/tokens/adobe-ims', headers: IMS_ONLY })
    expect(first.statusCode).toBe(200)
    let rejected: string = first.json().access_token
    const codes: number[] = []
    for (let i = 0; i < 7; i++) {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/tokens/adobe-ims/refresh',
        headers: { ...IMS_ONLY, ...JSON_HEADERS },
        payload: JSON.stringify({ rejected_token: rejected }),
      })
      codes.push(res.statusCode)
      if (res.statusCode === 200) rejected = res.json().access_token
      else expectError(res, 429, 'RATE_LIMITED')
    }
    expect(codes).toEqual([200, 200, 200, 200, 200, 200, 429])
    const after = await scrape()
    const added = new Map([...after].map(([k, v]) => [k, v - (before.get(k) ?? 0)]))
    expect(Object.fromEntries([...added].filter(([, v]) => v > 0))).toEqual({
      'claims-service|adobe-ims|OK': 7,
      'claims-service|adobe-ims|RATE_LIMITED': 1,
    })
  })

  it('counts each answer by client, credential and code (OK or the error code)', async () => {
    const before = await scrape()
    const get = (url: string, headers: Record<string, string> = ALL) => app.inject({ url, headers })
    for (let i = 0; i < 3; i++) expect((await get('/v1/tokens/adobe-ims')).statusCode).toBe(200)
    expect((await get('/v1/tokens/adobe-ims', IMS_ONLY)).statusCode).toBe(200)
    expect((await get('/v1/credentials')).statusCode).toBe(200)
    expectError(await get('/v1/tokens/adobe-ims', {}), 401, 'UNAUTHENTICATED')
    expectError(await get('/v1/tokens/adobe-ims', auth('not-a-key')), 401, 'UNAUTHENTICATED')
    expectError(await get('/v1/tokens/marketplace', IMS_ONLY), 403, 'FORBIDDEN')
    expectError(
      await app.inject({ url: '/v1/tokens/adobe-ims', headers: ALL, remoteAddress: '203.0.113.9' }),
      403,
      'FORBIDDEN',
    )
    expectError(await get('/v1/tokens/no-such-credential'), 404, 'CREDENTIAL_NOT_FOUND')
    expectError(await get('/v1/no-such-route'), 404, 'NOT_FOUND')
    expectError(await get('/v1/tokens/adobe-ims?min_ttl=1e3'), 400, 'BAD_REQUEST')
    expectError(
      await app.inject({
        method: 'POST',
        url: '/v1/tokens/adobe-ims/refresh',
        headers: { ...ALL, ...JSON_HEADERS },
        payload: '{"rejected_token":',
      }),
      400,
      'BAD_REQUEST',
    )
    // Upstream failures, for needs the held tokens cannot meet (made 11 s old: no debounce).
    clock.shift(11_000)
    sim.behave(IMS_CLIENT_ID, { mode: 'reject' })
    sim.behave(EQP_APP_ID, { mode: 'error5xx' })
    try {
      expectError(await get('/v1/tokens/adobe-ims?min_ttl=86395'), 502, 'UPSTREAM_REJECTED')
      expectError(await get('/v1/tokens/marketplace?min_ttl=86395'), 503, 'UPSTREAM_UNAVAILABLE')
    } finally {
      sim.reset()
    }
    // Health and metrics are not /v1: not counted.
    await app.inject({ url: '/healthz' })
    await app.inject({ url: '/readyz' })

    const after = await scrape()
    const added = new Map([...after].map(([k, v]) => [k, v - (before.get(k) ?? 0)]))
    const nonZero = new Map([...added].filter(([, v]) => v > 0))
    expect(Object.fromEntries(nonZero)).toEqual({
      'ops-tools|adobe-ims|OK': 3,
      'claims-service|adobe-ims|OK': 1,
      'ops-tools||OK': 1,
      '|adobe-ims|UNAUTHENTICATED': 2,
      'claims-service|marketplace|FORBIDDEN': 1,
      '|adobe-ims|FORBIDDEN': 1,
      'ops-tools||CREDENTIAL_NOT_FOUND': 1,
      '||NOT_FOUND': 1,
      'ops-tools|adobe-ims|BAD_REQUEST': 2,
      'ops-tools|adobe-ims|UPSTREAM_REJECTED': 1,
      'ops-tools|marketplace|UPSTREAM_UNAVAILABLE': 1,
    })
  })

  it('a credential id, key or path an attacker chooses never becomes a label value', async () => {
    const chosen = 'attacker-chosen-CANARY-9d1f'
    await app.inject({ url: `/v1/tokens/${chosen}`, headers: ALL })
    await app.inject({ url: `/v1/tokens/${chosen}`, headers: auth(chosen) })
    await app.inject({ method: 'POST', url: `/v1/tokens/${chosen}/refresh`, headers: ALL })
    await app.inject({ url: `/v1/${chosen}`, headers: ALL })
    await app.inject({ url: `/v1/tokens/adobe-ims?min_ttl=${chosen}`, headers: ALL })
    const body = (await app.inject({ url: '/metrics' })).body
    expect(body).not.toContain(chosen)
    const labels = new Set([...requestSeries(body).keys()].flatMap((k) => k.split('|')))
    const allowed = new Set(['', 'ops-tools', 'claims-service', 'adobe-ims', 'marketplace', 'OK'])
    const codes = /^[A-Z_]+$/
    for (const value of labels) expect(allowed.has(value) || codes.test(value), value).toBe(true)
    for (const secret of Object.values(SECRETS)) expect(body).not.toContain(secret)
  })
})
