import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Simulator } from '../../src/simulator/server.js'
import { buildBroker, EQP_APP_ID, SECRETS, startSimulator } from '../helpers/broker.js'
import { ALL, getToken, IMS_ONLY } from './support.js'

let sim: Simulator
let app: FastifyInstance
const served: string[] = []
beforeAll(async () => {
  sim = await startSimulator()
  // The EQP secret is refused: one credential with an error to report.
  sim.behave(EQP_APP_ID, { mode: 'reject' })
  app = await buildBroker({ simUrl: sim.url })
  served.push((await getToken(app, 'adobe-ims')).body.access_token)
})
afterAll(async () => {
  await app.close()
  await sim.close()
})

const FIELDS = ['id', 'type', 'environment', 'expires_at', 'refreshed_at', 'next_refresh_at', 'last_error']
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/

interface Listed {
  id: string
  type: string
  environment: string
  state?: string
  expires_at: string | null
  refreshed_at: string | null
  next_refresh_at: string | null
  last_error: { code: string; message: string; at: string } | null
}

async function list(headers: Record<string, string>): Promise<{ text: string; credentials: Listed[] }> {
  const res = await app.inject({ url: '/v1/credentials', headers })
  expect(res.statusCode).toBe(200)
  expect(res.headers['content-type']).toMatch(/^application\/json/)
  return { text: res.body, credentials: res.json().credentials }
}

describe('GET /v1/credentials', () => {
  it('lists only the credentials the client may use', async () => {
    expect((await list(IMS_ONLY)).credentials.map((c) => c.id)).toEqual(['adobe-ims'])
    expect((await list(ALL)).credentials.map((c) => c.id).sort()).toEqual(['adobe-ims', 'marketplace'])
  })

  it('gives each the documented fields, with times as ISO instants', async () => {
    const { credentials } = await list(ALL)
    for (const c of credentials) {
      for (const field of FIELDS) expect(c).toHaveProperty(field)
      // Nothing beyond the documented fields (docs/api.md) (and the state readiness also reports).
      expect(Object.keys(c).filter((k) => !FIELDS.includes(k) && k !== 'state')).toEqual([])
    }
    const ims = credentials.find((c) => c.id === 'adobe-ims')!
    expect(ims).toMatchObject({ type: 'ims', environment: 'production', last_error: null })
    expect(ims.expires_at).toMatch(ISO)
    expect(ims.refreshed_at).toMatch(ISO)
    expect(ims.next_refresh_at).toMatch(ISO)
    const now = Date.now()
    // Refreshed at warm-up; the next refresh is before expiry (REFRESH_MARGIN 0.2 of 86399 s ≈ 4.8 h before).
    expect(Date.parse(ims.refreshed_at!)).toBeLessThanOrEqual(now)
    expect(Date.parse(ims.next_refresh_at!)).toBeGreaterThan(now)
    expect(Date.parse(ims.next_refresh_at!)).toBeLessThan(Date.parse(ims.expires_at!))

    const eqp = credentials.find((c) => c.id === 'marketplace')!
    expect(eqp).toMatchObject({ type: 'eqp', environment: 'sandbox', expires_at: null, refreshed_at: null })
    expect(eqp.last_error).toMatchObject({ code: 'UPSTREAM_REJECTED' })
    expect(eqp.last_error!.at).toMatch(ISO)
    expect(eqp.last_error!.message).toMatch(
      /^Adobe Commerce Marketplace \(EQP\): token request rejected \(HTTP 401/,
    )
    // The rejected credential is retried no sooner than 30 s later.
    expect(Date.parse(eqp.next_refresh_at!) - now).toBeGreaterThan(25_000)
  })

  it('never holds a token, a secret or a key', async () => {
    for (const headers of [ALL, IMS_ONLY]) {
      const { text } = await list(headers)
      for (const value of [...served, ...Object.values(SECRETS)]) expect(text).not.toContain(value)
      expect(text).not.toMatch(/access_token|eyJ|Bearer/)
    }
  })
})
