import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFinished } from 'vitest'
import { createSimulator } from '../../src/simulator/server.js'

const sim = createSimulator({ secrets: (id) => (id === 'ims-1' || id === 'app-1' ? 'right' : undefined) })
let url = ''
beforeAll(async () => {
  url = await sim.listen()
})
beforeEach(() => sim.reset())
afterAll(() => sim.close())

function ims(fields: Record<string, string>, contentType = 'application/x-www-form-urlencoded') {
  return fetch(`${url}/ims/token/v3`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body: new URLSearchParams(fields).toString(),
  })
}
const imsOk = {
  client_id: 'ims-1',
  client_secret: 'right',
  grant_type: 'client_credentials',
  scope: 'openid',
}

function eqp(user: string | undefined, body: unknown, contentType = 'application/json') {
  const headers: Record<string, string> = { 'content-type': contentType }
  if (user !== undefined) headers.authorization = `Basic ${Buffer.from(user).toString('base64')}`
  return fetch(`${url}/rest/v1/app/session/token`, {
    method: 'POST',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })
}

describe('simulator: IMS endpoint', () => {
  it('issues a token for a good request', async () => {
    const res = await ims(imsOk)
    expect(res.status).toBe(200)
    const body = (await res.json()) as Record<string, unknown>
    expect(body).toMatchObject({ token_type: 'bearer', expires_in: 86399 })
    expect(body.access_token).toMatch(/^eyJ/)
  })

  it('answers shape errors with 400 in the IMS error shape', async () => {
    const cases: [Record<string, string>, string, string][] = [
      [{ ...imsOk, grant_type: 'password' }, 'application/x-www-form-urlencoded', 'unsupported_grant_type'],
      [
        { client_id: 'ims-1', client_secret: 'right' },
        'application/x-www-form-urlencoded',
        'invalid_request',
      ],
      [
        { client_secret: 'right', grant_type: 'client_credentials' },
        'application/x-www-form-urlencoded',
        'invalid_request',
      ],
      [imsOk, 'application/json', 'invalid_request'],
    ]
    for (const [fields, type, error] of cases) {
      const res = await ims(fields, type)
      expect(res.status).toBe(400)
      expect(await res.json()).toMatchObject({ error, error_description: expect.any(String) })
    }
    expect(sim.issued()).toBe(0)
  })

  it('rejects a wrong or missing secret and an unknown id with invalid_client', async () => {
    for (const fields of [
      { ...imsOk, client_secret: 'wrong' },
      { ...imsOk, client_secret: '' },
      { ...imsOk, client_id: 'stranger' },
    ]) {
      const res = await ims(fields)
      expect(res.status).toBe(400)
      expect(((await res.json()) as { error: string }).error).toBe('invalid_client')
    }
  })
})

describe('simulator: EQP endpoint', () => {
  it('issues a session token, at most 7200 s, with a stable mage_id', async () => {
    const a = (await (await eqp('app-1:right', { grant_type: 'session', expires_in: 600 })).json()) as Record<
      string,
      unknown
    >
    const b = (await (
      await eqp('app-1:right', { grant_type: 'session', expires_in: 90000 })
    ).json()) as Record<string, unknown>
    const c = (await (await eqp('app-1:right', { grant_type: 'session' })).json()) as Record<string, unknown>
    expect(a).toMatchObject({ expires_in: 600, mage_id: expect.stringMatching(/^MAG\d{9}$/) })
    expect(b.expires_in).toBe(7200)
    expect(c.expires_in).toBe(7200)
    expect(b.mage_id).toBe(a.mage_id)
    expect(a.ust).toMatch(/^[A-Za-z0-9_-]{32}\.[A-Za-z0-9_-]{12}$/)
    expect(a.ust).not.toBe(b.ust)
  })

  it('answers shape errors with 400 and bad credentials with 401, in the EQP error shape', async () => {
    const cases: [string | undefined, unknown, string, number][] = [
      ['app-1:right', { grant_type: 'client_credentials' }, 'application/json', 400],
      ['app-1:right', '{not json', 'application/json', 400],
      ['app-1:right', { grant_type: 'session', expires_in: 0 }, 'application/json', 400],
      ['app-1:right', { grant_type: 'session' }, 'text/plain', 400],
      [undefined, { grant_type: 'session' }, 'application/json', 401],
      ['app-1:wrong', { grant_type: 'session' }, 'application/json', 401],
      ['app-1:', { grant_type: 'session' }, 'application/json', 401],
      ['nobody:right', { grant_type: 'session' }, 'application/json', 401],
    ]
    for (const [user, body, type, status] of cases) {
      const res = await eqp(user, body, type)
      expect(res.status).toBe(status)
      expect(await res.json()).toEqual({ code: String(status), message: expect.any(String) })
    }
  })
})

describe('simulator: behaviours and counters', () => {
  it('counts every request per id, and successes apart, without secrets in the log', async () => {
    await ims(imsOk)
    await ims({ ...imsOk, client_secret: 'wrong' })
    await eqp('app-1:right', { grant_type: 'session' })
    expect(sim.mints()).toBe(3)
    expect(sim.mints('ims-1')).toBe(2)
    expect(sim.issued('ims-1')).toBe(1)
    expect(sim.issued('app-1')).toBe(1)
    expect(sim.issued('nobody')).toBe(0)
    expect(sim.requests.map((r) => [r.id, r.kind, r.ok])).toEqual([
      ['ims-1', 'ims', true],
      ['ims-1', 'ims', false],
      ['app-1', 'eqp', true],
    ])
    expect(JSON.stringify(sim.requests)).not.toContain('right')
  })

  it("applies '*' to every id, a specific id over '*', and reset() restores ok", async () => {
    sim.behave('*', { mode: 'error5xx', retryAfter: 3 })
    sim.behave('app-1', { mode: 'ok', expiresIn: 5 })
    const down = await ims(imsOk)
    expect(down.status).toBe(503)
    expect(down.headers.get('retry-after')).toBe('3')
    expect(await down.json()).toMatchObject({ error: 'server_error' })
    const up = await eqp('app-1:right', { grant_type: 'session' })
    expect(((await up.json()) as { expires_in: number }).expires_in).toBe(5)

    sim.reset()
    expect(sim.mints()).toBe(0)
    expect((await ims(imsOk)).status).toBe(200)
  })

  it('grants the lifetime the lifetime option gives, asked with the simulator clock, over expiresIn', async () => {
    const asked: [string, number][] = []
    const timed = createSimulator({
      now: () => 1_700_000_000_000,
      lifetime: (id, now) => {
        asked.push([id, now])
        return id === 'ims-1' ? 7 : undefined
      },
    })
    const base = await timed.listen()
    onTestFinished(() => timed.close())
    timed.behave('*', { expiresIn: 5 })
    const grant = async (clientId: string) => {
      const res = await fetch(`${base}/ims/token/v3`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ ...imsOk, client_id: clientId }).toString(),
      })
      return ((await res.json()) as { expires_in: number }).expires_in
    }
    expect(await grant('ims-1')).toBe(7)
    expect(await grant('ims-2')).toBe(5)
    expect(asked).toEqual([
      ['ims-1', 1_700_000_000_000],
      ['ims-2', 1_700_000_000_000],
    ])
  })

  it('merges partial behaviours', async () => {
    sim.behave('ims-1', { mode: 'rate_limited' })
    sim.behave('ims-1', { retryAfter: 9 })
    const res = await ims(imsOk)
    expect(res.status).toBe(429)
    expect(res.headers.get('retry-after')).toBe('9')
  })

  it('delays answers by latencyMs', async () => {
    sim.behave('ims-1', { latencyMs: 80 })
    const started = Date.now()
    expect((await ims(imsOk)).status).toBe(200)
    expect(Date.now() - started).toBeGreaterThanOrEqual(75)
  })

  it('gives each malformed answer', async () => {
    sim.behave('*', { mode: 'malformed', malformed: 'html' })
    const html = await ims(imsOk)
    expect(html.headers.get('content-type')).toBe('text/html')
    sim.behave('*', { malformed: 'expires_string' })
    expect(((await (await ims(imsOk)).json()) as { expires_in: unknown }).expires_in).toBe('86399')
    sim.behave('*', { malformed: 'expires_huge' })
    expect(
      ((await (await eqp('app-1:right', { grant_type: 'session' })).json()) as { expires_in: unknown })
        .expires_in,
    ).toBe(1e9)
    expect(sim.issued()).toBe(0)
  })
})

describe('simulator: control surface', () => {
  it('sets behaviours, reports stats and resets over HTTP', async () => {
    const set = await fetch(`${url}/__sim/behave`, {
      method: 'POST',
      body: JSON.stringify({ id: 'ims-1', mode: 'reject', status: 403 }),
    })
    expect(set.status).toBe(200)
    expect((await ims(imsOk)).status).toBe(403)

    const stats = await (await fetch(`${url}/__sim/stats`)).json()
    expect(stats).toEqual({ mints: { 'ims-1': 1 }, issued: {} })

    expect((await fetch(`${url}/__sim/reset`, { method: 'POST' })).status).toBe(200)
    expect((await ims(imsOk)).status).toBe(200)
    expect(await (await fetch(`${url}/__sim/stats`)).json()).toEqual({
      mints: { 'ims-1': 1 },
      issued: { 'ims-1': 1 },
    })
  })

  it('refuses bad behaviours with 400 and unknown paths with 404', async () => {
    for (const body of [
      'nope',
      '{}',
      '{"id":"x","mode":"explode"}',
      '{"id":"x","latency":5}',
      '{"id":"x","status":99}',
    ]) {
      const res = await fetch(`${url}/__sim/behave`, { method: 'POST', body })
      expect(res.status).toBe(400)
    }
    expect((await fetch(`${url}/nope`)).status).toBe(404)
  })
})

describe('simulator: lifecycle', () => {
  it('accepts any non-empty secret when no secrets are configured', async () => {
    const open = createSimulator()
    const base = await open.listen()
    const post = (secret: string) =>
      fetch(`${base}/ims/token/v3`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ ...imsOk, client_id: 'anyone', client_secret: secret }).toString(),
      })
    expect((await post('whatever')).status).toBe(200)
    expect((await post('')).status).toBe(400)
    await open.close()
  })

  it('close() ends a hanging request at once', async () => {
    const s = createSimulator()
    expect(() => s.url).toThrow(/not listening/)
    const base = await s.listen()
    expect(s.url).toBe(base)
    s.behave('*', { mode: 'hang' })
    const pending = fetch(`${base}/ims/token/v3`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(imsOk).toString(),
    }).then(
      () => 'answered',
      () => 'socket closed',
    )
    while (s.mints() === 0) await new Promise((r) => setTimeout(r, 5))
    const started = Date.now()
    await s.close()
    expect(await pending).toBe('socket closed')
    expect(Date.now() - started).toBeLessThan(1000)
  })
})
