import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createSimulator } from '../../src/simulator/server.js'

let now = Date.parse('2026-11-22T10:00:00Z')
const sim = createSimulator({ secrets: { 'ims-1': 'right', 'app-1': 'right' }, now: () => now })
let url = ''
beforeAll(async () => {
  url = await sim.listen()
})
beforeEach(() => sim.reset())
afterAll(() => sim.close())

async function imsToken(id = 'ims-1'): Promise<string> {
  const res = await fetch(`${url}/ims/token/v3`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: id, client_secret: 'right', grant_type: 'client_credentials' }),
  })
  return ((await res.json()) as { access_token: string }).access_token
}

async function eqpToken(): Promise<{ ust: string; mage_id: string }> {
  const res = await fetch(`${url}/rest/v1/app/session/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: `Basic ${Buffer.from('app-1:right').toString('base64')}`,
    },
    body: JSON.stringify({ grant_type: 'session', expires_in: 600 }),
  })
  return (await res.json()) as { ust: string; mage_id: string }
}

const sample = (headers: Record<string, string>) => fetch(`${url}/sample/v1/whoami`, { headers })
const user = (mageId: string, token: string) =>
  fetch(`${url}/rest/v1/users/${mageId}`, { headers: { authorization: `Bearer ${token}` } })

describe('simulator: the IMS-protected sample resource', () => {
  it('answers 200 with Authorization: Bearer and the matching X-API-Key', async () => {
    const token = await imsToken()
    const res = await sample({ authorization: `Bearer ${token}`, 'x-api-key': 'ims-1' })
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ client_id: 'ims-1', resource: 'sample' })
  })

  it('401 without either header or for a token it did not issue; 403 for another X-API-Key', async () => {
    const token = await imsToken()
    expect((await sample({ 'x-api-key': 'ims-1' })).status).toBe(401)
    expect((await sample({ authorization: `Bearer ${token}` })).status).toBe(401)
    expect((await sample({ authorization: 'Bearer made-up', 'x-api-key': 'ims-1' })).status).toBe(401)
    expect((await sample({ authorization: `Bearer ${token}`, 'x-api-key': 'other' })).status).toBe(403)
  })

  it('401 once the token expired, or once it is revoked (by token, or every token of an id)', async () => {
    const a = await imsToken()
    const b = await imsToken()
    const ok = (t: string) => sample({ authorization: `Bearer ${t}`, 'x-api-key': 'ims-1' })
    const revoke = await fetch(`${url}/__sim/revoke`, { method: 'POST', body: JSON.stringify({ token: a }) })
    expect(await revoke.json()).toEqual({ ok: true, revoked: 1 })
    expect((await ok(a)).status).toBe(401)
    expect((await ok(b)).status).toBe(200)
    expect(sim.revoke({ id: 'ims-1' })).toBeGreaterThanOrEqual(1) // earlier tests' tokens too
    expect((await ok(b)).status).toBe(401)

    const c = await imsToken()
    now += 86_399_000
    expect((await ok(c)).status).toBe(401)
    const body = await (await ok(c)).text()
    expect(body).toContain('expired')
    expect(body).not.toContain(c)
    expect(sim.resourceCalls()).toEqual({ 200: 1, 401: 4 })
  })

  it('the resource switch makes every token of an id answer 401', async () => {
    const token = await imsToken()
    await fetch(`${url}/__sim/behave`, {
      method: 'POST',
      body: JSON.stringify({ id: 'ims-1', resource: 'unauthorized' }),
    })
    expect((await sample({ authorization: `Bearer ${token}`, 'x-api-key': 'ims-1' })).status).toBe(401)
  })

  it('the revoke switch refuses a body naming nothing', async () => {
    const res = await fetch(`${url}/__sim/revoke`, { method: 'POST', body: '{}' })
    expect(res.status).toBe(400)
  })
})

describe('simulator: EQP GET /rest/v1/users/{mage_id}', () => {
  it("answers the token's own user; 403 for another; 401 for an unknown, expired or revoked token", async () => {
    const t = await eqpToken()
    const res = await user(t.mage_id, t.ust)
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ mage_id: t.mage_id })
    expect((await user('MAG000000001', t.ust)).status).toBe(403)
    expect((await user(t.mage_id, 'made-up.token')).status).toBe(401)
    // An IMS token is not an EQP session token.
    expect((await user(t.mage_id, await imsToken())).status).toBe(401)
    now += 600_000
    expect((await user(t.mage_id, t.ust)).status).toBe(401)
    const t2 = await eqpToken()
    sim.revoke({ token: t2.ust })
    expect((await user(t2.mage_id, t2.ust)).status).toBe(401)
  })
})

describe('simulator: its clock', () => {
  it('stamps the request log and the IMS token it issues with the injected clock, never the wall clock', async () => {
    now = Date.parse('2031-01-02T03:04:05Z')
    const token = await imsToken()
    const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { iat: number }
    expect(payload.iat).toBe(now)
    expect(sim.requests.map((r) => r.at)).toEqual([now])
  })
})
