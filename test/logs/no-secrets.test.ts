import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fingerprint } from '../../src/core/token.js'
import type { Simulator } from '../../src/simulator/server.js'
import {
  auth,
  brokerDocument,
  buildBroker,
  EQP_APP_ID,
  IMS_CLIENT_ID,
  SECRETS,
  startSimulator,
} from '../helpers/broker.js'

/**
 * The app at `trace`, through success and failure paths, with canary secrets, keys and tokens.
 * Whatever it logs, none of them may appear; a token appears only as its 8-hex fingerprint.
 */
const WRONG_KEY = 'wrong-key-CANARY-93b1d0'
const REJECTED_CANARY = 'rejected-token-CANARY-47e2c1'

const lines: string[] = []
/** Every token value the broker handed out during the run. */
const served = new Set<string>()
let sim: Simulator

const ALL = auth(SECRETS.keyAll)
const IMS_ONLY = auth(SECRETS.keyIms)
const JSON_HEADERS = { 'content-type': 'application/json' }

async function getToken(app: FastifyInstance, credential: string, query = '') {
  const res = await app.inject({ url: `/v1/tokens/${credential}${query}`, headers: ALL })
  if (res.statusCode === 200) served.add(res.json().access_token)
  return res
}

async function refresh(app: FastifyInstance, credential: string, rejected?: string) {
  const res = await app.inject({
    method: 'POST',
    url: `/v1/tokens/${credential}/refresh`,
    headers: { ...ALL, ...JSON_HEADERS },
    payload: JSON.stringify(rejected === undefined ? {} : { rejected_token: rejected }),
  })
  if (res.statusCode === 200) served.add(res.json().access_token)
  return res
}

beforeAll(async () => {
  sim = await startSimulator()

  // 1. Success: warm-up, GETs, a refresh with the current token, a stale refresh, the listings.
  const ok = await buildBroker({ simUrl: sim.url, logLines: lines })
  const ims = (await getToken(ok, 'adobe-ims')).json().access_token as string
  const eqp = (await getToken(ok, 'marketplace')).json().access_token as string
  expect((await refresh(ok, 'adobe-ims', ims)).statusCode).toBe(200)
  expect((await refresh(ok, 'marketplace', eqp)).statusCode).toBe(200)
  expect((await refresh(ok, 'adobe-ims', REJECTED_CANARY)).statusCode).toBe(200)
  await getToken(ok, 'adobe-ims', '?min_ttl=60')
  await ok.inject({ url: '/v1/credentials', headers: ALL })
  await ok.inject({ url: '/readyz' })
  await ok.inject({ url: '/metrics' })

  // 2. Refusals: 401 with canary keys, 403 by client and by address, 404, 400, 413.
  for (const authorization of [
    `Bearer ${WRONG_KEY}`,
    `Basic ${SECRETS.keyAll}`,
    `Basic ${Buffer.from(`u:${SECRETS.keyAll}`).toString('base64')}`,
    `Bearer ${SECRETS.keyAll} ${SECRETS.keyIms}`,
    `Bearer ${WRONG_KEY}${'k'.repeat(20_000)}`,
  ]) {
    expect((await ok.inject({ url: '/v1/tokens/adobe-ims', headers: { authorization } })).statusCode).toBe(
      401,
    )
  }
  expect((await ok.inject({ url: '/v1/tokens/marketplace', headers: IMS_ONLY })).statusCode).toBe(403)
  expect(
    (await ok.inject({ url: '/v1/tokens/adobe-ims', headers: ALL, remoteAddress: '203.0.113.9' })).statusCode,
  ).toBe(403)
  expect((await ok.inject({ url: '/v1/tokens/nope', headers: ALL })).statusCode).toBe(404)
  expect((await ok.inject({ url: '/v1/tokens/adobe-ims?min_ttl=abc', headers: ALL })).statusCode).toBe(400)
  const broken = await ok.inject({
    method: 'POST',
    url: '/v1/tokens/adobe-ims/refresh',
    headers: { ...ALL, ...JSON_HEADERS },
    payload: `{"rejected_token": "${REJECTED_CANARY}"`,
  })
  expect(broken.statusCode).toBe(400)
  const tooBig = await ok.inject({
    method: 'POST',
    url: '/v1/tokens/adobe-ims/refresh',
    headers: { ...ALL, ...JSON_HEADERS },
    payload: JSON.stringify({ rejected_token: `${REJECTED_CANARY}${'x'.repeat(2 * 1024 * 1024)}` }),
  })
  expect(tooBig.statusCode).toBe(413)
  await ok.close()

  // 3. Upstream failures: a refused secret, 5xx, 429, each malformed answer, a timeout.
  for (const behaviour of [
    { mode: 'reject' },
    { mode: 'error5xx', retryAfter: 1 },
    { mode: 'rate_limited' },
    { mode: 'malformed', malformed: 'not_json' },
    { mode: 'malformed', malformed: 'html' },
    { mode: 'malformed', malformed: 'no_token' },
    { mode: 'malformed', malformed: 'expires_zero' },
    { mode: 'malformed', malformed: 'expires_negative' },
    { mode: 'malformed', malformed: 'expires_huge' },
    { mode: 'malformed', malformed: 'expires_string' },
    { mode: 'hang' },
  ] as const) {
    sim.reset()
    sim.behave(IMS_CLIENT_ID, behaviour)
    sim.behave(EQP_APP_ID, behaviour)
    const failing = await buildBroker({
      simUrl: sim.url,
      logLines: lines,
      random: () => 0,
      env: { UPSTREAM_TIMEOUT_MS: '200' },
    })
    expect((await getToken(failing, 'adobe-ims')).statusCode).toBeGreaterThanOrEqual(500)
    expect((await refresh(failing, 'marketplace', REJECTED_CANARY)).statusCode).toBeGreaterThanOrEqual(500)
    await failing.inject({ url: '/readyz' })
    await failing.inject({ url: '/v1/credentials', headers: ALL })
    await failing.close()
  }

  // 4. A simulator that grants with a wrong secret configured (the secret goes upstream, is refused).
  sim.reset()
  const wrong = await buildBroker({
    simUrl: sim.url,
    logLines: lines,
    env: { TEST_IMS_SECRET: `${SECRETS.ims}-but-wrong` },
  })
  expect((await getToken(wrong, 'adobe-ims')).statusCode).toBe(502)
  await wrong.close()

  // 5. A configuration refused at start, with a literal secret in it.
  const literal = brokerDocument(sim.url)
  ;(literal.credentials['adobe-ims'] as Record<string, unknown>).clientSecret = SECRETS.ims
  await expect(buildBroker({ simUrl: sim.url, logLines: lines, document: literal })).rejects.toThrow(
    /clientSecret/,
  )
}, 60_000)

afterAll(async () => {
  await sim.close()
})

describe('logs at trace', () => {
  const text = () => lines.join('')

  it('were actually written, request lines included (the test would prove nothing otherwise)', () => {
    expect(lines.length).toBeGreaterThan(50)
    expect(text()).toMatch(/"level":20/) // debug lines are on
    expect(text()).toMatch(/incoming request/)
    expect(text()).toMatch(/minted a new token/)
    expect(text()).toMatch(/mint failed/)
    expect(served.size).toBeGreaterThanOrEqual(4)
  })

  it('hold no secret, no client key and no canary', () => {
    const all = text()
    for (const value of [...Object.values(SECRETS), WRONG_KEY, REJECTED_CANARY]) {
      expect(all, value).not.toContain(value)
    }
  })

  it('hold no token served during the run, nor any simulator-issued IMS token', () => {
    const all = text()
    for (const token of served) {
      expect(all).not.toContain(token)
      // Not even a recognisable piece of one.
      expect(all).not.toContain(token.slice(-24))
    }
    // Every IMS token of the simulator starts with this header, including those of malformed answers.
    expect(all).not.toContain('eyJhbGciOi')
    expect(all).not.toMatch(/Bearer \S/)
  })

  it('name tokens by 8-hex fingerprints only, and those of the served tokens do appear', () => {
    const tokenFields: string[] = []
    const walk = (value: unknown, key = ''): void => {
      if (value === null || typeof value !== 'object') {
        if (/token/i.test(key) && typeof value === 'string') tokenFields.push(value)
        return
      }
      for (const [k, v] of Object.entries(value)) walk(v, k)
    }
    for (const chunk of lines) {
      for (const line of chunk.split('\n').filter(Boolean)) walk(JSON.parse(line))
    }
    expect(tokenFields.length).toBeGreaterThan(0)
    for (const value of tokenFields) expect(value).toMatch(/^[0-9a-f]{8}$|^\[redacted\]$/)
    const prints = new Set(tokenFields)
    const servedPrints = [...served].map(fingerprint)
    expect(servedPrints.some((p) => prints.has(p))).toBe(true)
  })
})
